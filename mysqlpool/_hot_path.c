/* The common case of a pool's checkout and check-in, in C.
 *
 * AliasPool.checkout() and AliasPool.checkin() (mysqlpool/pooling.py) are the
 * reference: a HotPath does what they do when nothing unusual happens (an idle
 * connection at hand, fresh and not hung up; at check-in no transaction open and
 * nobody waiting) and hands every other case, unchanged, to them. A request cycle
 * runs one checkout and one check-in; as Python they cost several thousand
 * instructions, each step a bytecode or a call of its own (bench/README.rst has
 * the count). What the checkout asks of the connection record is what
 * SQLAlchemy's _ConnectionRecord.get_connection() asks before it hands out a
 * connection unchanged; mysqlpool/sqlalchemy_internals.py names each field read
 * here (HOT_PATH_RECORD_FIELDS, HOT_PATH_POOL_FIELDS), and
 * tests/test_sqlalchemy_internals.py checks them on the installed release.
 *
 * Nothing here releases the GIL, and no Python code runs between the checks and
 * what follows from them unless a holder is recorded (under a budget): a thread
 * switch cannot come between them, as it could between the bytecodes of the
 * Python version.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <poll.h>
#include <time.h>

/* As in _probes.c: anything to read on an idle connection means the server is gone. */
#define HUNG_UP (POLLIN | POLLPRI | POLLERR | POLLHUP | POLLNVAL)
/* mysqlpool.stats.FOLD_MASK: a checkout folds the recorded durations once in 1024. */
#define FOLD_MASK 1023UL

/* Where an attribute of one type lives, if it is a __slots__ slot: found once, as
 * CPython's own specialized LOAD_ATTR_SLOT finds it, and kept while the type's
 * version tag is unchanged (any change to the type or its bases gives it a new one). */
typedef struct {
    PyTypeObject *type; /* the type looked at (a strong reference); NULL until then */
    unsigned int version;
    Py_ssize_t offset;  /* -1: not a slot, looked up as any attribute */
} SlotPlace;

typedef struct {
    PyObject_HEAD
    PyObject *pool;              /* the AliasPool, set on each lease */
    PyObject *lend;              /* pool._lend(lease[, record]): the rest of a checkout, counted */
    PyObject *check_out;         /* AliasPool.checkout, bound to the pool */
    PyObject *check_in;          /* AliasPool.checkin, bound to the pool */
    PyObject *count_checkout;    /* stats.checkouts.add */
    PyObject *fold;              /* stats.fold */
    PyObject *take_idle;         /* the lender's take_idle */
    PyObject *idle;              /* the lender's idle deque */
    PyObject *put_idle;          /* its append */
    PyObject *line;              /* the lender's line of waiting threads */
    PyObject *serve_late_comers; /* the lender's */
    PyObject *budget_line;       /* budget.line, threads waiting for room in it */
    PyObject *hold;              /* budget.holders.hold */
    PyObject *release;           /* budget.holders.release */
    PyObject *alias;
    PyObject *queue_pool;        /* SQLAlchemy's QueuePool: ._invalidate_time */
    PyObject *record_use;        /* the use-time distribution's record */
    PyObject *initialized;       /* pooling.INITIALIZED, the record info's key */
    PyObject *wall_clock;        /* time.time, as SQLAlchemy's record times are */
    PyObject *monotonic;         /* time.monotonic, as the lease's are */
    Py_ssize_t max_idle;         /* 0: no limit */
    double recycle;              /* queue_pool._recycle, which only its __init__ sets */
    SlotPlace record_connection; /* the record's dbapi_connection slot */
    SlotPlace record_starttime;  /* its starttime slot */
    SlotPlace connection_fd;     /* the PooledConnection's _fd slot */
    PyObject *weakrefs;          /* the budget follows its pools' hot paths weakly */
    char tracking;               /* whether the budget records holders: it sets this */
    int clocks_direct;           /* the clocks are time.time and time.monotonic, read directly */
    Py_ssize_t handed_over;      /* calls passed on to the Python methods */
    int stopped;                 /* the pool is disposed or orphaned: all goes to Python */
} HotPath;

/* What a DatabaseWrapper has borrowed (mysqlpool.pooling.Lease, a subclass): the
 * fields the hot path reads and writes on every call, as C fields. */
typedef struct {
    PyObject_HEAD
    PyObject *pool;
    PyObject *record;
    PyObject *connection;
    PyObject *session;
    PyObject *since;   /* a float */
    PyObject *previous; /* the record lent last, kept after the check-in */
} LeaseFields;

static PyTypeObject LeaseFieldsType;

static PyObject *str_dbapi_connection, *str_starttime, *str_soft_invalidate_time, *str_info,
    *str_recycle, *str_invalidate_time, *str_fd, *str_in_transaction;

/* ------------------------------------------------------------------ helpers */

/* number as a C double (-1.0 with an error set on failure): a float's own value
 * without a call, as most of the numbers read here are. */
static inline double
as_double(PyObject *number)
{
    return PyFloat_CheckExact(number) ? PyFloat_AS_DOUBLE(number) : PyFloat_AsDouble(number);
}

/* A new reference to a number (or NULL, an error set) as a C double, the reference
 * released; 0, or -1 with an error set. */
static int
take_double(PyObject *number, double *value)
{
    if (number == NULL) {
        return -1;
    }
    *value = as_double(number);
    Py_DECREF(number);
    return (*value == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* obj.name as a C double; -1 with an error set on failure. */
static int
attribute_as_double(PyObject *obj, PyObject *name, double *value)
{
    return take_double(PyObject_GetAttr(obj, name), value);
}

/* Whether name is a __slots__ slot of type (an object field), told by the type's
 * attribute, the member descriptor; place keeps the answer for the type's version,
 * or nothing if the type has none (then every call looks again). */
static void
find_slot(SlotPlace *place, PyTypeObject *type, PyObject *name)
{
    Py_CLEAR(place->type);
    PyObject *descriptor = PyObject_GetAttr((PyObject *)type, name);
    if (descriptor == NULL) {
        PyErr_Clear();
    }
    /* The version after the lookup, which gives the type one if it had none. */
    unsigned int version = type->tp_version_tag;
    if (version == 0) {
        Py_XDECREF(descriptor);
        return;
    }
    place->type = (PyTypeObject *)Py_NewRef(type);
    place->version = version;
    place->offset = -1;
    if (descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type)
        && PyType_IsSubtype(type, PyDescr_TYPE(descriptor))) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == T_OBJECT_EX) {
            place->offset = member->offset;
        }
    }
    Py_XDECREF(descriptor);
}

/* obj.name (a new reference, or NULL with an error set), read straight from its
 * slot where place says it is one: a generic lookup of an attribute from C goes
 * through the type's attribute cache and its dicts each time, which on a request
 * cycle costs more than the bookkeeping it serves. */
static PyObject *
read_slot(SlotPlace *place, PyObject *obj, PyObject *name)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type != place->type || type->tp_version_tag != place->version) {
        find_slot(place, type, name);
    }
    if (type == place->type && place->offset >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + place->offset);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(obj, name); /* unset, or not a slot: as Python looks it up */
}

/* read_slot(), as a C double; -1 with an error set on failure. */
static int
slot_as_double(SlotPlace *place, PyObject *obj, PyObject *name, double *value)
{
    return take_double(read_slot(place, obj, name), value);
}

/* A clock's reading as a C double; -1 with an error set on failure. With
 * clocks_direct, clock_gettime(clock_id) itself, converted as Python's time.time()
 * and time.monotonic() convert it on Linux (the same reading, without a call into
 * the time module); else a call of clock. */
static int
read_clock(HotPath *self, PyObject *clock, int clock_id, double *now)
{
#ifdef __linux__
    struct timespec reading;
    if (self->clocks_direct && clock_gettime((clockid_t)clock_id, &reading) == 0) {
        long long ns = (long long)reading.tv_sec * 1000000000LL + reading.tv_nsec;
        /* _PyTime_AsSecondsDouble(): whole seconds exactly, else ns / 1e9. */
        *now = ns % 1000000000LL == 0 ? (double)(ns / 1000000000LL) : (double)ns / 1e9;
        return 0;
    }
#else
    (void)self;
    (void)clock_id;
#endif
    PyObject *value = PyObject_CallNoArgs(clock);
    if (value == NULL) {
        return -1;
    }
    *now = as_double(value);
    Py_DECREF(value);
    return (*now == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* time.time() and time.monotonic(), as read_clock() reads them. */
#ifdef __linux__
#define read_wall_clock(self, now) read_clock((self), (self)->wall_clock, CLOCK_REALTIME, (now))
#define read_monotonic(self, now) read_clock((self), (self)->monotonic, CLOCK_MONOTONIC, (now))
#else
#define read_wall_clock(self, now) read_clock((self), (self)->wall_clock, 0, (now))
#define read_monotonic(self, now) read_clock((self), (self)->monotonic, 0, (now))
#endif

/* Call callable() for its effect; 0, or -1 with an error set. */
static int
call_none(PyObject *callable)
{
    PyObject *result = PyObject_CallNoArgs(callable);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Call callable(arg) for its effect; 0, or -1 with an error set. */
static int
call_one(PyObject *callable, PyObject *arg)
{
    PyObject *result = PyObject_CallOneArg(callable, arg);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* ------------------------------------------------------------------ checkout */

/* The record's connection if SQLAlchemy would hand it out unchanged (new ref), else
 * NULL: never opened, due for recycling, invalidated by its pool or softly. As
 * _ConnectionRecord.get_connection() decides; the comparisons are its own. */
static PyObject *
unchanged_connection(HotPath *self, PyObject *record)
{
    double started, now, invalidated, soft_invalidated;
    PyObject *connection = read_slot(&self->record_connection, record, str_dbapi_connection);
    if (connection == NULL || connection == Py_None) {
        Py_XDECREF(connection);
        return NULL;
    }
    if (slot_as_double(&self->record_starttime, record, str_starttime, &started) < 0
        || (self->recycle > -1 && (read_wall_clock(self, &now) < 0 || now - started > self->recycle))
        || attribute_as_double(self->queue_pool, str_invalidate_time, &invalidated) < 0
        || invalidated > started
        || attribute_as_double(record, str_soft_invalidate_time, &soft_invalidated) < 0
        || soft_invalidated > started) {
        Py_DECREF(connection);
        return NULL;
    }
    return connection;
}

/* The session settings the record's connection was set up with (None: a new one). */
static PyObject *
session_of(HotPath *self, PyObject *record)
{
    PyObject *info = PyObject_GetAttr(record, str_info);
    if (info == NULL) {
        return NULL;
    }
    PyObject *session = PyDict_Check(info) ? PyDict_GetItemWithError(info, self->initialized) : NULL;
    if (session == NULL && !PyErr_Occurred()) {
        session = PyDict_Check(info) ? Py_None : NULL;
        if (session == NULL) {
            PyErr_SetString(PyExc_TypeError, "the record's info is not a dict");
        }
    }
    Py_XINCREF(session);
    Py_DECREF(info);
    return session;
}

/* 1 if the server hung up on the idle connection, 0 if not, -1 with an error set. */
static int
server_hung_up(HotPath *self, PyObject *connection)
{
    PyObject *fd_object = read_slot(&self->connection_fd, connection, str_fd);
    if (fd_object == NULL) {
        return -1;
    }
    long fd = PyLong_AsLong(fd_object);
    Py_DECREF(fd_object);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    struct pollfd entry = {(int)fd, HUNG_UP, 0};
    return poll(&entry, 1, 0) != 0;
}

/* Lend the lease the record and its connection; 0, or -1 with an error set. */
static int
lend_to(HotPath *self, LeaseFields *lease, PyObject *record, PyObject *connection, PyObject *session)
{
    double now;
    if (read_monotonic(self, &now) < 0) {
        return -1;
    }
    Py_XSETREF(lease->pool, Py_NewRef(self->pool));
    Py_XSETREF(lease->record, Py_NewRef(record));
    Py_XSETREF(lease->previous, Py_NewRef(record));
    Py_XSETREF(lease->connection, Py_NewRef(connection));
    PyObject *since = PyFloat_FromDouble(now);
    if (since == NULL) {
        return -1;
    }
    Py_XSETREF(lease->session, Py_NewRef(session));
    Py_XSETREF(lease->since, since);
    return 0;
}

/* The Python checkout goes on from a record taken already (the tests count these). */
static PyObject *
hand_over_checkout(HotPath *self, PyObject *lease, PyObject *record)
{
    /* Whatever failed here, the Python version asks again and handles it. */
    PyErr_Clear();
    self->handed_over++;
    PyObject *args[] = {lease, record};
    PyObject *connection = PyObject_Vectorcall(self->lend, args, 2, NULL);
    Py_DECREF(record);
    return connection;
}

/* Under a budget, tell its holders of the lease's checkout or check-in: call
 * ``hold(id(lease), alias)`` or ``release(id(lease))`` (the key as the Python version
 * makes it). 0, or -1 with an error set. */
static int
tell_holders(HotPath *self, PyObject *hold_or_release, PyObject *lease)
{
    if (!self->tracking) {
        return 0;
    }
    PyObject *key = PyLong_FromVoidPtr(lease);
    if (key == NULL) {
        return -1;
    }
    PyObject *args[] = {key, self->alias};
    PyObject *result = PyObject_Vectorcall(hold_or_release, args, hold_or_release == self->hold ? 2 : 1, NULL);
    Py_DECREF(key);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}

/* The record the lease had last, taken out of the idle deque if it is there (a
 * new reference); NULL, with no error set, if the lease had none or it is not idle.
 * Lender.take_idle_for in Python says why. From the end the check-ins append to:
 * a connection returned a moment ago is found first. Nothing here releases the
 * GIL or runs Python code, so no other thread changes the deque meanwhile. */
static PyObject *
take_previous(HotPath *self, LeaseFields *lease)
{
    PyObject *previous = lease->previous;
    if (previous == NULL || previous == Py_None) {
        return NULL;
    }
    for (Py_ssize_t i = PyObject_Length(self->idle) - 1; i >= 0; i--) {
        PyObject *record = PySequence_GetItem(self->idle, i);
        if (record == NULL) {
            break;
        }
        Py_DECREF(record); /* the deque holds it */
        if (record == previous) {
            Py_INCREF(previous);
            if (PySequence_DelItem(self->idle, i) < 0) {
                Py_DECREF(previous);
                break;
            }
            return previous;
        }
    }
    PyErr_Clear(); /* the Python take_idle asks the deque again */
    return NULL;
}

static PyObject *
checkout(HotPath *self, PyObject *lease)
{
    if (self->stopped || !PyObject_TypeCheck(lease, &LeaseFieldsType)) {
        self->handed_over++;
        return PyObject_CallOneArg(self->check_out, lease);
    }
    PyObject *count = PyObject_CallNoArgs(self->count_checkout);
    if (count == NULL) {
        return NULL;
    }
    unsigned long low_bits = PyLong_AsUnsignedLongMask(count);
    Py_DECREF(count);
    if (low_bits == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((low_bits & FOLD_MASK) == 0 && call_none(self->fold) < 0) {
        return NULL;
    }
    PyObject *record = take_previous(self, (LeaseFields *)lease);
    if (record == NULL) {
        record = PyObject_CallNoArgs(self->take_idle);
    }
    if (record == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_IndexError)) {
            return NULL;
        }
        /* None idle: the Python checkout waits in line or opens one. */
        PyErr_Clear();
        self->handed_over++;
        return PyObject_CallOneArg(self->lend, lease);
    }
    PyObject *connection = unchanged_connection(self, record);
    if (connection == NULL) {
        return hand_over_checkout(self, lease, record);
    }
    PyObject *session = session_of(self, record);
    int dead = session == NULL ? -1 : (session != Py_None && server_hung_up(self, connection));
    if (dead != 0 || lend_to(self, (LeaseFields *)lease, record, connection, session) < 0) {
        Py_XDECREF(session);
        Py_DECREF(connection);
        return hand_over_checkout(self, lease, record);
    }
    Py_DECREF(session);
    Py_DECREF(record);
    if (tell_holders(self, self->hold, lease) < 0) {
        Py_DECREF(connection);
        return NULL;
    }
    return connection;
}

/* ------------------------------------------------------------------ check-in */

/* 1 if the check-in is the common case, 0 if not, -1 with an error set. Nothing is
 * changed here: whatever the answer, the check-in has not begun. */
static int
plain_check_in(HotPath *self, LeaseFields *lease)
{
    if (self->stopped || lease->record == NULL || lease->record == Py_None || lease->connection == NULL
        || lease->since == NULL) {
        return 0;
    }
    /* The connection's own probe: its close() replaces it by one that says yes. */
    PyObject *probe = PyObject_GetAttr(lease->connection, str_in_transaction);
    PyObject *answer = probe == NULL ? NULL : PyObject_CallNoArgs(probe);
    Py_XDECREF(probe);
    int unusual = answer == NULL ? -1 : PyObject_IsTrue(answer);
    Py_XDECREF(answer);
    if (unusual == 0) {
        /* Threads waiting, for this pool or for the budget, or no room among the idle. */
        unusual = PyObject_Length(self->line) != 0 || PyObject_Length(self->budget_line) != 0
            || (self->max_idle && PyObject_Length(self->idle) >= self->max_idle);
    }
    return unusual == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* Return the lease's record idle, its use timed and its holder released; 0 or -1. */
static int
put_back_idle(HotPath *self, LeaseFields *lease)
{
    double now, since = as_double(lease->since);
    PyObject *record = lease->record; /* the lease's reference, now the caller's */
    lease->record = Py_NewRef(Py_None);
    int failed = (since == -1.0 && PyErr_Occurred()) || read_monotonic(self, &now) < 0;
    PyObject *used = failed ? NULL : PyFloat_FromDouble(now - since);
    failed = used == NULL || call_one(self->record_use, used) < 0;
    Py_XDECREF(used);
    failed = failed || tell_holders(self, self->release, (PyObject *)lease) < 0
        || call_one(self->put_idle, record) < 0;
    Py_DECREF(record);
    /* A thread may have lined up meanwhile (only if releasing the holder let one run). */
    if (!failed && PyObject_Length(self->line) > 0) {
        failed = call_none(self->serve_late_comers) < 0;
    }
    return failed ? -1 : 0;
}

static PyObject *
checkin(HotPath *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    int plain = 0;
    if (PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL && PyObject_TypeCheck(args[0], &LeaseFieldsType)) {
        plain = plain_check_in(self, (LeaseFields *)args[0]);
    }
    if (plain <= 0) {
        PyErr_Clear(); /* the Python version asks again and handles it */
        self->handed_over++;
        return PyObject_Vectorcall(self->check_in, args, nargsf, kwnames);
    }
    if (put_back_idle(self, (LeaseFields *)args[0]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
stop(HotPath *self, PyObject *unused)
{
    self->stopped = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ the type */

/* 1 if wall_clock and monotonic are the time module's time() and monotonic(), 0 if
 * not (a test's clocks, say: then they are called), -1 with an error set. */
static int
are_time_functions(PyObject *wall_clock, PyObject *monotonic)
{
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) {
        return -1;
    }
    PyObject *time_time = PyObject_GetAttrString(time_module, "time");
    PyObject *time_monotonic = time_time == NULL ? NULL : PyObject_GetAttrString(time_module, "monotonic");
    Py_DECREF(time_module);
    int same = time_monotonic == NULL ? -1 : (wall_clock == time_time && monotonic == time_monotonic);
    Py_XDECREF(time_time);
    Py_XDECREF(time_monotonic);
    return same;
}

static int
HotPath_init(HotPath *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "pool", "check_out", "lend", "check_in", "count_checkout", "fold", "take_idle", "idle",
        "line", "serve_late_comers", "budget", "hold", "release", "alias", "queue_pool",
        "record_use", "initialized", "wall_clock", "monotonic", "max_idle", NULL};
    PyObject *pool, *check_out, *lend, *check_in, *count_checkout, *fold, *take_idle, *idle, *line,
        *serve_late_comers, *budget, *hold, *release, *alias, *queue_pool, *record_use,
        *initialized, *wall_clock, *monotonic;
    Py_ssize_t max_idle;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOOOOOOOOOOOOOOOOOOn:HotPath", keywords, &pool, &check_out, &lend,
            &check_in, &count_checkout, &fold, &take_idle, &idle, &line, &serve_late_comers,
            &budget, &hold, &release, &alias, &queue_pool, &record_use, &initialized, &wall_clock,
            &monotonic, &max_idle)) {
        return -1;
    }
    PyObject *put_idle = PyObject_GetAttrString(idle, "append");
    if (put_idle == NULL) {
        return -1;
    }
    PyObject *budget_line = PyObject_GetAttrString(budget, "line");
    if (budget_line == NULL) {
        Py_DECREF(put_idle);
        return -1;
    }
#define KEEP(field) Py_XSETREF(self->field, Py_NewRef(field));
    KEEP(pool) KEEP(check_out) KEEP(lend) KEEP(check_in) KEEP(count_checkout) KEEP(fold)
    KEEP(take_idle) KEEP(idle) KEEP(line) KEEP(serve_late_comers) KEEP(hold)
    KEEP(release) KEEP(alias) KEEP(queue_pool) KEEP(record_use) KEEP(initialized)
    KEEP(wall_clock) KEEP(monotonic)
#undef KEEP
    Py_XSETREF(self->put_idle, put_idle);
    Py_XSETREF(self->budget_line, budget_line);
    self->max_idle = max_idle;
    if (attribute_as_double(queue_pool, str_recycle, &self->recycle) < 0) {
        return -1;
    }
    int direct = are_time_functions(wall_clock, monotonic);
    if (direct < 0) {
        return -1;
    }
    self->clocks_direct = direct;
    self->stopped = 0;
    return 0;
}

/* Every object field, for the garbage collector (the pool refers to its HotPath). */
#define FOR_EACH_FIELD(DO)                                                                 \
    DO(pool) DO(check_out) DO(lend) DO(check_in) DO(count_checkout) DO(fold) DO(take_idle) \
    DO(idle) DO(put_idle) DO(line) DO(serve_late_comers) DO(budget_line) DO(hold)          \
    DO(release) DO(alias) DO(queue_pool) DO(record_use) DO(initialized) DO(wall_clock)     \
    DO(monotonic) DO(record_connection.type) DO(record_starttime.type)                     \
    DO(connection_fd.type)

static int
HotPath_traverse(HotPath *self, visitproc visit, void *arg)
{
#define VISIT(field) Py_VISIT(self->field);
    FOR_EACH_FIELD(VISIT)
#undef VISIT
    return 0;
}

static int
HotPath_clear(HotPath *self)
{
#define CLEAR(field) Py_CLEAR(self->field);
    FOR_EACH_FIELD(CLEAR)
#undef CLEAR
    return 0;
}

static void
HotPath_dealloc(HotPath *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    HotPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef HotPath_methods[] = {
    {"checkout", (PyCFunction)checkout, METH_O,
     "AliasPool.checkout(lease), its common case in C; any other passed on to the pool."},
    {"checkin", (PyCFunction)(void (*)(void))checkin, METH_FASTCALL | METH_KEYWORDS,
     "AliasPool.checkin(lease, *, discard=False), its common case in C; any other passed on."},
    {"stop", (PyCFunction)stop, METH_NOARGS,
     "From now on pass every call on: the pool is disposed, or orphaned in a forked child."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef HotPath_members[] = {
    {"handed_over", T_PYSSIZET, offsetof(HotPath, handed_over), READONLY,
     "How many checkouts and check-ins were passed on to the pool's Python methods."},
    {"tracking", T_BOOL, offsetof(HotPath, tracking), 0,
     "Whether checkouts are recorded in the budget's holders; the budget sets it (Budget.follow)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject HotPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlpool._hot_path.HotPath",
    .tp_doc = "The common checkout and check-in of one AliasPool (see mysqlpool/_hot_path.c).",
    .tp_basicsize = sizeof(HotPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HotPath_init,
    .tp_dealloc = (destructor)HotPath_dealloc,
    .tp_traverse = (traverseproc)HotPath_traverse,
    .tp_clear = (inquiry)HotPath_clear,
    .tp_methods = HotPath_methods,
    .tp_members = HotPath_members,
    .tp_weaklistoffset = offsetof(HotPath, weakrefs),
};

/* ------------------------------------------------------------------ the lease's fields */

static PyObject *
LeaseFields_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    LeaseFields *self = (LeaseFields *)type->tp_alloc(type, 0);
    if (self != NULL) {
        /* As the Python version starts: nothing borrowed. */
        self->pool = Py_NewRef(Py_None);
        self->record = Py_NewRef(Py_None);
        self->connection = Py_NewRef(Py_None);
        self->session = Py_NewRef(Py_None);
        self->previous = Py_NewRef(Py_None);
        self->since = PyFloat_FromDouble(0.0);
        if (self->since == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    return (PyObject *)self;
}

static int
LeaseFields_traverse(LeaseFields *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pool);
    Py_VISIT(self->record);
    Py_VISIT(self->connection);
    Py_VISIT(self->session);
    Py_VISIT(self->since);
    Py_VISIT(self->previous);
    return 0;
}

static int
LeaseFields_clear(LeaseFields *self)
{
    Py_CLEAR(self->pool);
    Py_CLEAR(self->record);
    Py_CLEAR(self->connection);
    Py_CLEAR(self->session);
    Py_CLEAR(self->since);
    Py_CLEAR(self->previous);
    return 0;
}

static void
LeaseFields_dealloc(LeaseFields *self)
{
    /* A subclass's __del__ (tp_finalize) has run already, as for any GC type. */
    PyObject_GC_UnTrack(self);
    LeaseFields_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* T_OBJECT_EX, as for __slots__: Python's attribute access specializes for those
 * only (T_OBJECT or T_DOUBLE fields cost three times more to read from Python). */
static PyMemberDef LeaseFields_members[] = {
    {"pool", T_OBJECT_EX, offsetof(LeaseFields, pool), 0, "The pool lent from (None before the first checkout)."},
    {"record", T_OBJECT_EX, offsetof(LeaseFields, record), 0, "The record checked out; None while nothing is."},
    {"connection", T_OBJECT_EX, offsetof(LeaseFields, connection), 0, "The record's connection."},
    {"session", T_OBJECT_EX, offsetof(LeaseFields, session), 0, "The session settings it was set up with."},
    {"since", T_OBJECT_EX, offsetof(LeaseFields, since), 0, "When the checkout ended (time.monotonic())."},
    {"previous", T_OBJECT_EX, offsetof(LeaseFields, previous), 0,
     "The record lent last, kept after the check-in: lent again while it is idle."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject LeaseFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mysqlpool._hot_path.LeaseFields",
    .tp_doc = "The fields of mysqlpool.pooling.Lease, read and written by the hot path in C.",
    .tp_basicsize = sizeof(LeaseFields),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = LeaseFields_new,
    .tp_dealloc = (destructor)LeaseFields_dealloc,
    .tp_traverse = (traverseproc)LeaseFields_traverse,
    .tp_clear = (inquiry)LeaseFields_clear,
    .tp_members = LeaseFields_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mysqlpool._hot_path",
    .m_doc = "The common checkout and check-in of a pool, in C (see mysqlpool.pooling).",
    .m_size = -1,
};

static int
intern_names(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1;
    INTERN(str_dbapi_connection, "dbapi_connection")
    INTERN(str_starttime, "starttime")
    INTERN(str_soft_invalidate_time, "_soft_invalidate_time")
    INTERN(str_info, "info")
    INTERN(str_recycle, "_recycle")
    INTERN(str_invalidate_time, "_invalidate_time")
    INTERN(str_fd, "_fd")
    INTERN(str_in_transaction, "in_transaction")
#undef INTERN
    return 0;
}

PyMODINIT_FUNC
PyInit__hot_path(void)
{
    if (intern_names() < 0 || PyType_Ready(&HotPathType) < 0 || PyType_Ready(&LeaseFieldsType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "HotPath", (PyObject *)&HotPathType) < 0
        || PyModule_AddObjectRef(m, "LeaseFields", (PyObject *)&LeaseFieldsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
