/* Many verified in-memory bodies put in place in C, the GIL released once: isc_kit.placement's fast path.
 *
 * place_many(jobs, mode) -> list of (errno, step, size, mtime_ns)
 *   jobs: a sequence of (tmp, final, buffer): tmp and final are paths (str or bytes), buffer any
 *         C-contiguous bytes-like object whose MD5 the caller has already checked.
 *   For each job: open tmp new (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, `mode` before the umask), write the
 *   whole buffer, fstat, close, rename(tmp, final). errno is 0 on success; otherwise step says which
 *   call failed (0 open, 1 write, 2 fstat, 3 close, 4 rename) and the temp file has been removed.
 *   size and mtime_ns are the placed file's (from fstat before the rename).
 * alloc(n) -> bytearray of n bytes, not zero-filled: a receive buffer every byte of which is written
 *   before it is read.
 *
 * The Python loop this replaces releases and retakes the GIL five times a file; on a fetch the event
 * loop wants the GIL at the same moment, and each hand-over costs a futex wake-up on both threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

typedef struct {
    PyObject *tmp, *final; /* bytes, from PyUnicode_FSConverter */
    Py_buffer view;
    int have_view;
    int err, step;
    int64_t size, mtime_ns;
} Job;

static void place_one(Job *j, int mode) {
    const char *tmp = PyBytes_AS_STRING(j->tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        j->err = errno, j->step = 0;
        return;
    }
    const char *p = j->view.buf;
    Py_ssize_t left = j->view.len;
    while (left > 0) {
        ssize_t n = write(fd, p, (size_t)(left > (1 << 30) ? (1 << 30) : left));
        if (n < 0) {
            if (errno == EINTR) continue;
            j->err = errno, j->step = 1;
            break;
        }
        if (n == 0) { /* no progress and no error: treat as a full disk rather than spin */
            j->err = ENOSPC, j->step = 1;
            break;
        }
        p += n, left -= n;
    }
    struct stat st;
    if (!j->err && fstat(fd, &st) != 0) j->err = errno, j->step = 2;
    if (close(fd) != 0 && !j->err && errno != EINTR) j->err = errno, j->step = 3;
    if (!j->err) {
        j->size = (int64_t)st.st_size;
        j->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (rename(tmp, PyBytes_AS_STRING(j->final)) != 0) j->err = errno, j->step = 4;
    }
    if (j->err) unlink(tmp);
}

static void release(Job *jobs, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(jobs[i].tmp);
        Py_XDECREF(jobs[i].final);
        if (jobs[i].have_view) PyBuffer_Release(&jobs[i].view);
    }
    PyMem_Free(jobs);
}

static PyObject *place_many(PyObject *self, PyObject *args) {
    PyObject *seq_in;
    int mode = 0644;
    if (!PyArg_ParseTuple(args, "O|i", &seq_in, &mode)) return NULL;
    PyObject *seq = PySequence_Fast(seq_in, "place_many: jobs must be a sequence of (tmp, final, buffer)");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Job *jobs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Job));
    if (!jobs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_Format(PyExc_TypeError, "place_many: job %zd is not a (tmp, final, buffer) tuple", i);
            goto fail;
        }
        if (!PyUnicode_FSConverter(PyTuple_GET_ITEM(item, 0), &jobs[i].tmp)) goto fail;
        if (!PyUnicode_FSConverter(PyTuple_GET_ITEM(item, 1), &jobs[i].final)) goto fail;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 2), &jobs[i].view, PyBUF_C_CONTIGUOUS) != 0) goto fail;
        jobs[i].have_view = 1;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) place_one(&jobs[i], mode);
    Py_END_ALLOW_THREADS
    PyObject *out = PyList_New(n);
    if (!out) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = Py_BuildValue("(iiLL)", jobs[i].err, jobs[i].step, (long long)jobs[i].size,
                                      (long long)jobs[i].mtime_ns);
        if (!row) {
            Py_DECREF(out);
            goto fail;
        }
        PyList_SET_ITEM(out, i, row);
    }
    release(jobs, n);
    Py_DECREF(seq);
    return out;
fail:
    release(jobs, n);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *alloc(PyObject *self, PyObject *args) {
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "n", &n)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "alloc: negative size");
        return NULL;
    }
    return PyByteArray_FromStringAndSize(NULL, n);
}

static PyMethodDef placex_methods[] = {
    {"place_many", place_many, METH_VARARGS,
     "place_many(jobs, mode=0o644) -> [(errno, step, size, mtime_ns)]: write each (tmp, final, buffer), rename into place."},
    {"alloc", alloc, METH_VARARGS, "alloc(n) -> bytearray of n bytes, not zero-filled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef placex_module = {
    PyModuleDef_HEAD_INIT, "isc_kit._placex", "Verified in-memory bodies put in place in C, the GIL released.", -1,
    placex_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__placex(void) { return PyModule_Create(&placex_module); }
