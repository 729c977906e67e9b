/* simsink._fastrec: Run.record() for the common cases, in C.
 *
 * The Python client batches rows in a per-stream block and hands full blocks
 * to libsimsink (client.py). Per-call cost decides W1 from Python
 * (docs/performance.md): in pure Python, record() of a 100-float row costs
 * about 0.16 us before the hand-over, most of it interpreter work around one
 * 800-byte copy. This module does the same steps in C for the cases a
 * simulation loop hits: a C-contiguous buffer (numpy array) of the stream's
 * dtype and row shape, or a Python float/int for a float64/int64 scalar
 * stream. Everything else (the first record of a key, other types,
 * conversions, errors) goes to the Python code, Run._record_py, unchanged.
 *
 * StreamBase and RunBase are base classes of client._Stream and client.Run:
 * they hold the fields this code reads as C members, which the Python code
 * reads and writes as attributes (s.o, s.limit, ...), so both paths share
 * one state. The GIL serialises them (the ticker thread lowers s.limit).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t o;      /* position: elements (k > 0) or rows (k == 0) */
    Py_ssize_t k;      /* elements per 1-D row, or 0 */
    Py_ssize_t limit;  /* hand the block over at this position */
    Py_ssize_t full;   /* the block's end (limit's reset value) */
    unsigned long long ptr; /* the block's data, 0 without a block */
    Py_ssize_t rowbytes;    /* bytes per row; 0: no fast path for this stream */
    Py_ssize_t itemsize;
    PyObject* fmt;   /* bytes: the struct format of the dtype ("d", "f", "q", ...) */
    PyObject* shape; /* tuple: the row shape */
    char scalar;     /* 'd': Python floats go in as float64, 'q': ints as int64, 0: neither */
} StreamBase;

static PyMemberDef stream_members[] = {
    {"o", T_PYSSIZET, offsetof(StreamBase, o), 0, NULL},
    {"k", T_PYSSIZET, offsetof(StreamBase, k), 0, NULL},
    {"limit", T_PYSSIZET, offsetof(StreamBase, limit), 0, NULL},
    {"full", T_PYSSIZET, offsetof(StreamBase, full), 0, NULL},
    {"ptr", T_ULONGLONG, offsetof(StreamBase, ptr), 0, NULL},
    {"rowbytes", T_PYSSIZET, offsetof(StreamBase, rowbytes), 0, NULL},
    {"itemsize", T_PYSSIZET, offsetof(StreamBase, itemsize), 0, NULL},
    {"fmt", T_OBJECT, offsetof(StreamBase, fmt), 0, NULL},
    {"cshape_t", T_OBJECT, offsetof(StreamBase, shape), 0, NULL},
    {"scalar", T_CHAR, offsetof(StreamBase, scalar), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static int stream_traverse(StreamBase* self, visitproc visit, void* arg) {
    Py_VISIT(self->fmt);
    Py_VISIT(self->shape);
    return 0;
}

static int stream_clear(StreamBase* self) {
    Py_CLEAR(self->fmt);
    Py_CLEAR(self->shape);
    return 0;
}

static void stream_dealloc(StreamBase* self) {
    PyObject_GC_UnTrack(self);
    stream_clear(self);
    Py_TYPE(self)->tp_free((PyObject*)self);
}

static PyTypeObject StreamBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "simsink._fastrec.StreamBase",
    .tp_basicsize = sizeof(StreamBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)stream_traverse,
    .tp_clear = (inquiry)stream_clear,
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_members = stream_members,
};

typedef struct {
    PyObject_HEAD
    PyObject* streams; /* dict: key -> _Stream */
} RunBase;

static PyMemberDef run_members[] = {
    {"_streams", T_OBJECT, offsetof(RunBase, streams), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyObject* s_record_py; /* interned "_record_py" */
static PyObject* s_ship;      /* interned "_ship" */

/* Copies `value` into the next row of the block if it is one of the fast
 * cases; returns 1 (copied), 0 (not a fast case: nothing done), -1 (error). */
static int fast_copy(StreamBase* s, PyObject* value) {
    char* dst = (char*)(uintptr_t)s->ptr + (s->k ? s->o * s->itemsize : s->o * s->rowbytes);
    if (s->scalar == 'd' && PyFloat_CheckExact(value)) {
        double v = PyFloat_AS_DOUBLE(value);
        memcpy(dst, &v, sizeof v);
        return 1;
    }
    if (s->scalar == 'q' && PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0; /* the Python path says what is wrong */
        }
        memcpy(dst, &v, sizeof v);
        return 1;
    }
    if (!PyObject_CheckBuffer(value) || PyBytes_Check(value) || PyByteArray_Check(value))
        return 0;
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Clear();
        return 0;
    }
    int ok = view.len == s->rowbytes && view.itemsize == s->itemsize && view.format &&
             strcmp(view.format, PyBytes_AS_STRING(s->fmt)) == 0 &&
             view.ndim == PyTuple_GET_SIZE(s->shape);
    for (Py_ssize_t i = 0; ok && i < view.ndim; ++i)
        ok = view.shape[i] == PyLong_AsSsize_t(PyTuple_GET_ITEM(s->shape, i));
    if (ok) memcpy(dst, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return ok;
}

static PyObject* run_record(RunBase* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "record(key, value) takes 2 arguments");
        return NULL;
    }
    PyObject* key = args[0];
    PyObject* value = args[1];
    PyObject* s = self->streams && PyDict_CheckExact(self->streams)
                      ? PyDict_GetItemWithError(self->streams, key)
                      : NULL;
    if (s && PyObject_TypeCheck(s, &StreamBaseType)) {
        StreamBase* st = (StreamBase*)s;
        if (st->ptr && st->rowbytes && st->fmt && st->shape && PyBytes_Check(st->fmt) &&
            PyTuple_Check(st->shape)) {
            int r = fast_copy(st, value);
            if (r < 0) return NULL;
            if (r == 1) {
                st->o += st->k ? st->k : 1;
                if (st->o >= st->limit) {
                    Py_INCREF(s); /* _ship may drop the stream from the dict */
                    PyObject* res = PyObject_CallMethodOneArg((PyObject*)self, s_ship, s);
                    Py_DECREF(s);
                    if (!res) return NULL;
                    Py_DECREF(res);
                }
                Py_RETURN_NONE;
            }
        }
    } else if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject* pyargs[3] = {(PyObject*)self, key, value};
    return PyObject_VectorcallMethod(s_record_py, pyargs,
                                     3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyMethodDef run_methods[] = {
    {"record", (PyCFunction)(void (*)(void))run_record, METH_FASTCALL,
     "record(key, value): appends one row to stream `key` (see Run._record_py)."},
    {NULL, NULL, 0, NULL},
};

static int run_traverse(RunBase* self, visitproc visit, void* arg) {
    Py_VISIT(self->streams);
    return 0;
}

static int run_clear(RunBase* self) {
    Py_CLEAR(self->streams);
    return 0;
}

static void run_dealloc(RunBase* self) {
    PyObject_GC_UnTrack(self);
    run_clear(self);
    Py_TYPE(self)->tp_free((PyObject*)self);
}

static PyTypeObject RunBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "simsink._fastrec.RunBase",
    .tp_basicsize = sizeof(RunBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)run_traverse,
    .tp_clear = (inquiry)run_clear,
    .tp_dealloc = (destructor)run_dealloc,
    .tp_members = run_members,
    .tp_methods = run_methods,
};

static struct PyModuleDef fastrec_module = {
    PyModuleDef_HEAD_INIT, "_fastrec", "Run.record() fast paths in C (see _fastrec.c).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastrec(void) {
    if (PyType_Ready(&StreamBaseType) < 0 || PyType_Ready(&RunBaseType) < 0) return NULL;
    s_record_py = PyUnicode_InternFromString("_record_py");
    s_ship = PyUnicode_InternFromString("_ship");
    if (!s_record_py || !s_ship) return NULL;
    PyObject* m = PyModule_Create(&fastrec_module);
    if (!m) return NULL;
    Py_INCREF(&StreamBaseType);
    Py_INCREF(&RunBaseType);
    if (PyModule_AddObject(m, "StreamBase", (PyObject*)&StreamBaseType) < 0 ||
        PyModule_AddObject(m, "RunBase", (PyObject*)&RunBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
