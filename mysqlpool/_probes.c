/* The two questions the pool asks on every checkout and check-in, in C.
 *
 * mysqlpool/connection.py explains them and asks them through ctypes when this
 * module is missing. A ctypes call costs many times more (it builds a libffi
 * call description every time; CHANGELOG.rst has the figures). Neither
 * releases the GIL: neither can block, and releasing and retaking it costs more
 * than the call when many threads share it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <poll.h>

/* Something to read, or a hang-up, on an idle MySQL connection's socket means
 * the server is gone: a healthy idle connection is never sent anything. */
#define HUNG_UP (POLLIN | POLLPRI | POLLERR | POLLHUP | POLLNVAL)

/* mariadb_get_info() of MariaDB Connector/C, found by the caller (it lives in the
 * library mysqlclient was built with), and its MARIADB_CONNECTION_SERVER_STATUS. */
typedef char (*get_info_function)(void *mysql, int value, void *arg);
#define SERVER_STATUS 30
#define SERVER_STATUS_IN_TRANS 1

static PyObject *
hung_up(PyObject *module, PyObject *fd_object)
{
    long fd = PyLong_AsLong(fd_object);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    struct pollfd entry = {(int)fd, HUNG_UP, 0};
    return PyBool_FromLong(poll(&entry, 1, 0) != 0);
}

static PyObject *
in_transaction(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "in_transaction(get_info_address, mysql_address)");
        return NULL;
    }
    get_info_function get_info = (get_info_function)PyLong_AsVoidPtr(args[0]);
    void *mysql = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    unsigned int status = 0;
    if (get_info == NULL || mysql == NULL || get_info(mysql, SERVER_STATUS, &status) != 0) {
        Py_RETURN_TRUE; /* cannot tell: a transaction may be open */
    }
    return PyBool_FromLong(status & SERVER_STATUS_IN_TRANS);
}

static PyMethodDef methods[] = {
    {"hung_up", hung_up, METH_O, "True if the socket fd has something to read or is hung up."},
    {"in_transaction", (PyCFunction)(void (*)(void))in_transaction, METH_FASTCALL,
     "True unless the server status says no transaction is open."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mysqlpool._probes",
    .m_doc = "The pool's checks of a connection, without a round trip (see mysqlpool.connection).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__probes(void)
{
    return PyModule_Create(&module);
}
