/* Who holds each checked-out connection: the record made at every checkout under a
 * budget, in C.
 *
 * mysqlpool.holders.Recorder is the reference: a Recorder here does what it does,
 * with the same first guess of where the user's code is (the depth of the last
 * checkout's site). As Python, hold() and release() cost about 8,000 instructions
 * per request cycle, most of them the Python frames themselves (bench/README.rst).
 *
 * Frames are asked for through sys._getframe(depth): since Python 3.11 a frame is a
 * plain C structure until asked for as an object, and sys._getframe() makes an
 * object of the one frame asked for only, where walking from the innermost frame
 * (PyEval_GetFrame(), PyFrame_GetBack()) makes one of every frame on the way. The
 * depths here count from the innermost Python frame, hold()'s caller (a C function
 * has no frame of its own).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <pythread.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *holders;         /* dict: key -> (alias, thread ident, since, site) */
    PyObject *machinery_files; /* dict: filename -> bool, as is_machinery() fills it */
    PyObject *is_machinery;    /* holders._is_machinery(filename) */
    PyObject *getframe;        /* sys._getframe */
    PyObject *monotonic;       /* time.monotonic */
    PyObject *on_hold;         /* called after a hold unless None (starts the watchdog) */
    Py_ssize_t last_depth;     /* the depth of the last site found: the next guess */
} Recorder;

/* ------------------------------------------------------------------ frames */

/* 1 if the frame's code is the machinery's (Django's, mysqlpool's), 0 if the
 * user's, -1 with an error set. */
static int
is_machinery(Recorder *self, PyFrameObject *frame)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *filename = Py_NewRef(code->co_filename);
    Py_DECREF(code);
    PyObject *known = PyDict_GetItemWithError(self->machinery_files, filename);
    int machinery;
    if (known != NULL) {
        machinery = PyObject_IsTrue(known);
    } else if (PyErr_Occurred()) {
        machinery = -1;
    } else {
        PyObject *answer = PyObject_CallOneArg(self->is_machinery, filename);
        machinery = answer == NULL ? -1 : PyObject_IsTrue(answer);
        Py_XDECREF(answer);
    }
    Py_DECREF(filename);
    return machinery;
}

/* The frame ``depth`` calls out from the innermost (new ref); NULL with an error
 * set, a ValueError if the stack is not that deep. */
static PyFrameObject *
frame_at(Recorder *self, Py_ssize_t depth)
{
    PyObject *argument = PyLong_FromSsize_t(depth);
    if (argument == NULL) {
        return NULL;
    }
    PyObject *frame = PyObject_CallOneArg(self->getframe, argument);
    Py_DECREF(argument);
    if (frame != NULL && !PyFrame_Check(frame)) {
        PyErr_Format(PyExc_TypeError, "getframe() returned %.200s, not a frame", Py_TYPE(frame)->tp_name);
        Py_CLEAR(frame);
    }
    return (PyFrameObject *)frame;
}

/* (code object, offset of its running instruction): holders.Site. */
static PyObject *
site_of(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *offset = PyLong_FromLong(PyFrame_GetLasti(frame));
#else
    PyObject *offset = PyObject_GetAttrString((PyObject *)frame, "f_lasti");
#endif
    if (offset == NULL) {
        return NULL;
    }
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *site = PyTuple_Pack(2, (PyObject *)code, offset);
    Py_DECREF(code);
    Py_DECREF(offset);
    return site;
}

/* The site at the depth of the last one, if its frame is the user's and the one
 * below it the machinery's (new ref); NULL otherwise, with an error set only if
 * one occurred other than the stack being shallower. */
static PyObject *
guessed_site(Recorder *self)
{
    Py_ssize_t depth = self->last_depth;
    if (depth < 1) {
        return NULL;
    }
    PyFrameObject *below = frame_at(self, depth - 1);
    if (below == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
        }
        return NULL;
    }
    PyFrameObject *frame = is_machinery(self, below) == 1 ? PyFrame_GetBack(below) : NULL;
    Py_DECREF(below);
    PyObject *site = NULL;
    if (frame != NULL && is_machinery(self, frame) == 0) {
        site = site_of(frame);
    }
    Py_XDECREF(frame);
    return site;
}

/* The innermost site of the user's code, walked frame by frame (new ref); None if
 * the stack has none (or no Python frame at all), NULL with an error set. */
static PyObject *
walked_site(Recorder *self)
{
    PyFrameObject *frame = frame_at(self, 0);
    if (frame == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
    }
    for (Py_ssize_t depth = 0; frame != NULL; depth++) {
        int machinery = is_machinery(self, frame);
        if (machinery < 0) {
            Py_DECREF(frame);
            return NULL;
        }
        if (!machinery) {
            self->last_depth = depth;
            PyObject *site = site_of(frame);
            Py_DECREF(frame);
            return site;
        }
        Py_SETREF(frame, PyFrame_GetBack(frame));
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ the methods */

static PyObject *
hold(Recorder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "hold() takes 2 arguments (key, alias), %zd given", nargs);
        return NULL;
    }
    if (self->holders == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder.__init__() was not called");
        return NULL;
    }
    PyObject *site = guessed_site(self);
    if (site == NULL) {
        site = PyErr_Occurred() ? NULL : walked_site(self);
        if (site == NULL) {
            return NULL;
        }
    }
    PyObject *since = PyObject_CallNoArgs(self->monotonic);
    PyObject *thread = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    PyObject *holder = since && thread ? PyTuple_Pack(4, args[1], thread, since, site) : NULL;
    Py_XDECREF(since);
    Py_XDECREF(thread);
    Py_DECREF(site);
    int failed = holder == NULL || PyDict_SetItem(self->holders, args[0], holder) < 0;
    Py_XDECREF(holder);
    if (failed) {
        return NULL;
    }
    if (self->on_hold != Py_None) {
        /* Our own reference for the call: on_hold may reset on_hold (it does). */
        PyObject *on_hold = Py_NewRef(self->on_hold);
        PyObject *result = PyObject_CallNoArgs(on_hold);
        Py_DECREF(on_hold);
        if (result == NULL) {
            return NULL;
        }
        Py_DECREF(result);
    }
    Py_RETURN_NONE;
}

static PyObject *
release(Recorder *self, PyObject *key)
{
    if (self->holders == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder.__init__() was not called");
        return NULL;
    }
    if (PyDict_DelItem(self->holders, key) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
            return NULL;
        }
        PyErr_Clear(); /* released already, or recorded before tracking began */
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ the type */

#define FOR_EACH_FIELD(DO) \
    DO(holders) DO(machinery_files) DO(is_machinery) DO(getframe) DO(monotonic) DO(on_hold)

static int
Recorder_init(Recorder *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"holders", "machinery_files", "is_machinery", "getframe", "monotonic", NULL};
    PyObject *holders, *machinery_files, *is_machinery, *getframe, *monotonic;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$O!O!OOO:Recorder", keywords, &PyDict_Type, &holders, &PyDict_Type,
            &machinery_files, &is_machinery, &getframe, &monotonic)) {
        return -1;
    }
#define KEEP(field) Py_XSETREF(self->field, Py_NewRef(field));
    KEEP(holders) KEEP(machinery_files) KEEP(is_machinery) KEEP(getframe) KEEP(monotonic)
#undef KEEP
    Py_XSETREF(self->on_hold, Py_NewRef(Py_None));
    self->last_depth = 1;
    return 0;
}

static int
Recorder_traverse(Recorder *self, visitproc visit, void *arg)
{
#define VISIT(field) Py_VISIT(self->field);
    FOR_EACH_FIELD(VISIT)
#undef VISIT
    return 0;
}

static int
Recorder_clear(Recorder *self)
{
#define CLEAR(field) Py_CLEAR(self->field);
    FOR_EACH_FIELD(CLEAR)
#undef CLEAR
    return 0;
}

static void
Recorder_dealloc(Recorder *self)
{
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* on_hold: None or a callable; never deleted (hold() reads it unchecked). */
static int
Recorder_set_on_hold(Recorder *self, PyObject *value, void *closure)
{
    if (value == NULL || (value != Py_None && !PyCallable_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "on_hold must be None or a callable");
        return -1;
    }
    Py_XSETREF(self->on_hold, Py_NewRef(value));
    return 0;
}

static PyObject *
Recorder_get_on_hold(Recorder *self, void *closure)
{
    return Py_NewRef(self->on_hold != NULL ? self->on_hold : Py_None);
}

static PyGetSetDef Recorder_getset[] = {
    {"on_hold", (getter)Recorder_get_on_hold, (setter)Recorder_set_on_hold,
     "Called after each hold unless None (Holders starts its watchdog so).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Recorder_methods[] = {
    {"hold", (PyCFunction)(void (*)(void))hold, METH_FASTCALL,
     "hold(key, alias): record who checked out, when, and from where in the user's code."},
    {"release", (PyCFunction)release, METH_O, "release(key): forget the checkout's holder."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlpool._holders.Recorder",
    .tp_doc = "mysqlpool.holders.Recorder in C: holds and releases checkouts (see mysqlpool/_holders.c).",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorder_init,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_traverse = (traverseproc)Recorder_traverse,
    .tp_clear = (inquiry)Recorder_clear,
    .tp_methods = Recorder_methods,
    .tp_getset = Recorder_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mysqlpool._holders",
    .m_doc = "The record of who holds each checkout, in C (see mysqlpool.holders).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__holders(void)
{
    if (PyType_Ready(&RecorderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "Recorder", (PyObject *)&RecorderType) < 0) {
        Py_CLEAR(m);
    }
    return m;
}
