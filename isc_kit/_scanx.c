/* One folder listed and its regular files stat'ed in C, the GIL released: isc_kit.destination's scan.
 *
 * scan_dir(path, threads) -> (files, sizes, mtimes, others)
 *   files:  the regular files' names, each followed by a NUL (raw bytes, as readdir gives them)
 *   sizes, mtimes: int64 (native order) per file: st_size and st_mtime in nanoseconds (lstat: no symlink followed)
 *   others: the other entries' names, each preceded by one kind byte ('d' folder, 'l' symlink,
 *           'o' FIFO, socket or device) and followed by a NUL
 * An entry that vanishes between readdir and lstat is left out (as if listed a moment later).
 * readdir gives names and d_type; the lstat calls, the cost of a large folder, are split over
 * `threads` POSIX threads. OSError (with the path) when the folder cannot be opened or read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

typedef struct {
    int dirfd;
    const char *names; /* NUL-terminated names back to back */
    const size_t *starts;
    size_t lo, hi;
    int64_t *sizes, *mtimes;
    char *kind; /* in: 'f' regular, '?' unknown; out: 'f', 'd', 'l', 'o', or 0 (vanished) */
} Job;

static char kind_of(mode_t mode) {
    if (S_ISREG(mode)) return 'f';
    if (S_ISDIR(mode)) return 'd';
    if (S_ISLNK(mode)) return 'l';
    return 'o';
}

static void *stat_range(void *arg) {
    Job *j = arg;
    for (size_t i = j->lo; i < j->hi; i++) {
        if (j->kind[i] != 'f' && j->kind[i] != '?') continue;
        struct stat st;
        if (fstatat(j->dirfd, j->names + j->starts[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            j->kind[i] = 0;
            continue;
        }
        j->kind[i] = kind_of(st.st_mode);
        j->sizes[i] = (int64_t)st.st_size;
        j->mtimes[i] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    return NULL;
}

static char kind_of_dtype(unsigned char t) {
    switch (t) {
    case DT_REG: return 'f';
    case DT_DIR: return 'd';
    case DT_LNK: return 'l';
    case DT_UNKNOWN: return '?';
    default: return 'o';
    }
}

static PyObject *scan_dir(PyObject *self, PyObject *args) {
    PyObject *path_obj;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "O&|i", PyUnicode_FSConverter, &path_obj, &threads)) return NULL;
    const char *path = PyBytes_AS_STRING(path_obj);
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;

    Buf names = {0}, starts = {0}, kinds = {0};
    int err = 0, nomem = 0;
    DIR *dir = NULL;
    int64_t *sizes = NULL, *mtimes = NULL;
    size_t n = 0;

    Py_BEGIN_ALLOW_THREADS
    dir = opendir(path);
    if (!dir) {
        err = errno;
    } else {
        struct dirent *e;
        for (;;) {
            errno = 0;
            e = readdir(dir);
            if (!e) {
                err = errno;
                break;
            }
            const char *nm = e->d_name;
            if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
            size_t at = names.len;
            char k = kind_of_dtype(e->d_type);
            if (buf_put(&names, nm, strlen(nm) + 1) || buf_put(&starts, &at, sizeof at) || buf_put(&kinds, &k, 1)) {
                nomem = 1;
                break;
            }
        }
        n = kinds.len;
        if (!err && !nomem && n) {
            sizes = calloc(n, sizeof *sizes);
            mtimes = calloc(n, sizeof *mtimes);
            if (!sizes || !mtimes) nomem = 1;
        }
        if (!err && !nomem && n) {
            size_t nt = (size_t)threads;
            if (n < 4096) nt = 1; /* thread start-up costs more than a small folder's lstat calls */
            Job jobs[16];
            pthread_t tids[16];
            int started[16] = {0};
            for (size_t t = 0; t < nt; t++) {
                jobs[t] = (Job){dirfd(dir), names.data, (size_t *)starts.data, n * t / nt, n * (t + 1) / nt,
                                sizes, mtimes, kinds.data};
                if (t > 0 && pthread_create(&tids[t], NULL, stat_range, &jobs[t]) == 0) started[t] = 1;
            }
            stat_range(&jobs[0]);
            for (size_t t = 1; t < nt; t++) {
                if (started[t])
                    pthread_join(tids[t], NULL);
                else
                    stat_range(&jobs[t]); /* no thread: this one does the share itself */
            }
        }
        closedir(dir);
    }
    Py_END_ALLOW_THREADS

    PyObject *result = NULL;
    if (nomem) {
        PyErr_NoMemory();
    } else if (err) {
        errno = err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
    } else {
        Buf files = {0}, others = {0};
        size_t nf = 0;
        const size_t *st = (const size_t *)starts.data;
        for (size_t i = 0; i < n && !nomem; i++) {
            char k = kinds.data[i];
            const char *nm = names.data + st[i];
            size_t len = strlen(nm) + 1;
            if (k == 'f') {
                nomem = buf_put(&files, nm, len);
                sizes[nf] = sizes[i];
                mtimes[nf] = mtimes[i];
                nf++;
            } else if (k) {
                nomem = buf_put(&others, &k, 1) || buf_put(&others, nm, len);
            }
        }
        if (nomem)
            PyErr_NoMemory();
        else
            result = Py_BuildValue("(y#y#y#y#)", files.data ? files.data : "", (Py_ssize_t)files.len,
                                   sizes ? (char *)sizes : "", (Py_ssize_t)(nf * sizeof *sizes),
                                   mtimes ? (char *)mtimes : "",
                                   (Py_ssize_t)(nf * sizeof *mtimes), others.data ? others.data : "",
                                   (Py_ssize_t)others.len);
        free(files.data);
        free(others.data);
    }
    free(names.data);
    free(starts.data);
    free(kinds.data);
    free(sizes);
    free(mtimes);
    Py_DECREF(path_obj);
    return result;
}

static PyMethodDef scanx_methods[] = {
    {"scan_dir", scan_dir, METH_VARARGS,
     "scan_dir(path, threads=1) -> (files, sizes, mtimes, others): one folder's entries, regular files lstat'ed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scanx_module = {
    PyModuleDef_HEAD_INIT, "isc_kit._scanx", "One folder listed and its files lstat'ed in C, the GIL released.", -1,
    scanx_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scanx(void) { return PyModule_Create(&scanx_module); }
