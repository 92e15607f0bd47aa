/* What the kernels share: UTF-8 encoding, and the argument plumbing: an Arrow string array arrives as its offsets buffer
 * (int32, or int64 when `wide`) and its data buffer, results go into caller-allocated buffers. */
#ifndef CURATE_STRINGS_H
#define CURATE_STRINGS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    Py_buffer offsets, data;
    int wide;          /* int64 offsets */
    Py_ssize_t n;      /* number of strings */
} Strings;

static inline int get_strings(PyObject *offsets, PyObject *data, int wide, Strings *s) {
    if (PyObject_GetBuffer(offsets, &s->offsets, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(data, &s->data, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&s->offsets); return -1; }
    s->wide = wide;
    Py_ssize_t w = wide ? 8 : 4;
    s->n = s->offsets.len / w - 1;
    if (s->n < 0) s->n = 0;
    return 0;
}

static inline void release_strings(Strings *s) { PyBuffer_Release(&s->offsets); PyBuffer_Release(&s->data); }

static inline int64_t off_at(const Strings *s, Py_ssize_t i) {
    return s->wide ? ((const int64_t *)s->offsets.buf)[i] : (int64_t)((const int32_t *)s->offsets.buf)[i];
}

static inline int check_bounds(const Strings *s) {
    if (s->n == 0) return 0;
    int64_t lo = off_at(s, 0), hi = off_at(s, s->n);
    if (lo < 0 || hi < lo || hi > s->data.len) {
        PyErr_SetString(PyExc_ValueError, "offsets do not fit the data buffer");
        return -1;
    }
    return 0;
}

static inline int get_out(PyObject *obj, Py_buffer *b, Py_ssize_t need) {
    if (PyObject_GetBuffer(obj, b, PyBUF_WRITABLE) < 0) return -1;
    if (b->len < need) {
        PyBuffer_Release(b);
        PyErr_Format(PyExc_ValueError, "output buffer too small: %zd < %zd bytes", b->len, need);
        return -1;
    }
    return 0;
}

/* One code point as UTF-8; returns the bytes written (1-4). */
static inline size_t put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
