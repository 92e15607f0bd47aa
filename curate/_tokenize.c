/* curate._tokenize: CCNet-normalised word tokens of whole Arrow string arrays.
 *
 * ccnet_lines(offsets, data, wide, per_line, tokenize=True) -> (text, line_offsets, line_doc, line_ntok)
 *
 * Each document is cut into lines at '\n', '\r\n' and '\r'; each line is normalised like
 * cc_net.text_normalizer.normalize(line) with its defaults (lower case, accents stripped by NFD,
 * digits -> '0', CCNet's punctuation map, C0/C1 controls removed), then split into tokens at
 * whitespace and around every punctuation or symbol character (one token each); tokens are joined
 * by one space. per_line: one output line per line with a token, line_doc = its document;
 * otherwise one output line per document (maybe empty). Offsets, documents and token counts are
 * int64 arrays returned as bytes. tokenize=False (for a user's tokeniser): the same lines and
 * counts, but each line's text is normalize(line) itself, spaces as they are.
 *
 * CCNet lower-cases and NFDs the whole line; _ccnet_tables.h (scripts/gen_ccnet_tables.py) holds
 * the composed transform of one code point, which equals the whole-line result except for two
 * effects that span characters, both handled here: 'Σ' lowers to final 'ς' depending on its
 * neighbours (Greek only), and NFD sorts adjacent combining marks by class, which after Mn are
 * dropped only matters for 25 non-Mn marks (a few Mc viramas, Hangul tone marks, musical symbols)
 * meeting out of class order. Malformed UTF-8 (Arrow never passes it) is U+FFFD per byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "_ccnet_tables.h"

#include "_strings.h"

/* Offsets must rise and stay inside the data: the loop below trusts them. */
static int check_offsets(const Strings *s) {
    for (Py_ssize_t i = 0; i <= s->n && s->n > 0; i++) {
        int64_t a = off_at(s, i);
        if (a < 0 || a > s->data.len || (i > 0 && a < off_at(s, i - 1))) {
            PyErr_SetString(PyExc_ValueError, "offsets do not fit the data buffer");
            return -1;
        }
    }
    return 0;
}

/* ---- code points ------------------------------------------------------------------------- */

/* Decode one code point; anything malformed is one byte of U+FFFD (Arrow validated the input). */
static inline uint32_t decode(const uint8_t *p, const uint8_t *end, int *len) {
    uint8_t c = p[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c >= 0xC2 && c < 0xE0 && end - p >= 2 && (p[1] & 0xC0) == 0x80) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if (c >= 0xE0 && c < 0xF0 && end - p >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { *len = 3; return cp; }
    } else if (c >= 0xF0 && c < 0xF5 && end - p >= 4 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80
               && (p[3] & 0xC0) == 0x80) {
        uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12)
                      | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        if (cp >= 0x10000 && cp <= 0x10FFFF) { *len = 4; return cp; }
    }
    *len = 1;
    return 0xFFFD;
}

/* The code point ending just before p (p > lo), decoded the way decode() would have read it. */
static inline uint32_t decode_back(const uint8_t *lo, const uint8_t *p, int *len) {
    const uint8_t *q = p - 1;
    while (q > lo && p - q < 4 && (*q & 0xC0) == 0x80) q--;
    int n;
    uint32_t cp = decode(q, p, &n);
    if (q + n == p) { *len = n; return cp; }
    *len = 1;
    return 0xFFFD;
}

/* Index of the last start <= cp in a sorted table whose first start is <= cp. */
static inline size_t last_le(const uint32_t *starts, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (starts[mid] <= cp) lo = mid; else hi = mid;
    }
    return lo;
}

/* Non-ASCII text tends to stay in one range (a script's letters): try the last one first. */
static inline uint32_t cc_val(uint32_t cp, size_t *hint) {
    size_t h = *hint;
    if (CC_START[h] <= cp && (h + 1 == CC_N_RANGES || cp < CC_START[h + 1])) return CC_VAL[h];
    h = last_le(CC_START, CC_N_RANGES, cp);
    *hint = h;
    return CC_VAL[h];
}

static inline int case_kind(uint32_t cp) { return CC_CASE_K[last_le(CC_CASE_START, CC_N_CASE, cp)]; }

static int ns_ccc(uint32_t cp) {
    for (int i = 0; i < CC_N_NS; i++) if (CC_NS_CP[i] == cp) return CC_NS_CCC[i];
    return 0;
}

/* Python lowers U+03A3 to final 'ς' when a cased letter precedes it and none follows, skipping
 * case-ignorable characters both ways (unicodeobject.c handle_capital_sigma). Line breaks are
 * neither, so scanning the whole document equals scanning the line. */
static int final_sigma(const uint8_t *lo, const uint8_t *at, const uint8_t *after, const uint8_t *hi) {
    int k = 0, n;
    const uint8_t *q = at;
    while (q > lo) {
        k = case_kind(decode_back(lo, q, &n));
        q -= n;
        if (k != 2) break;
    }
    if (k != 1) return 0;
    for (q = after; q < hi; q += n) {
        k = case_kind(decode(q, hi, &n));
        if (k != 2) return k != 1;
    }
    return 1;
}

/* ---- output ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *text; size_t len, cap;
    int64_t *off, *doc, *ntok; size_t nl, lcap;  /* off holds nl + 1 entries */
    uint8_t *scratch; size_t scap;               /* for sorting combining marks (rare) */
} Out;

static int reserve_text(Out *o, size_t more) {
    if (o->cap - o->len >= more) return 0;
    size_t ncap = o->cap * 2 > o->len + more ? o->cap * 2 : o->len + more;
    uint8_t *t = (uint8_t *)realloc(o->text, ncap);
    if (!t) return -1;
    o->text = t; o->cap = ncap;
    return 0;
}

static int push_line(Out *o, Py_ssize_t doc, int64_t ntok) {
    if (o->nl + 2 > o->lcap) {
        size_t ncap = o->lcap ? o->lcap * 2 : 1024;
        int64_t *a = (int64_t *)realloc(o->off, ncap * 8);
        if (!a) return -1;
        o->off = a;
        a = (int64_t *)realloc(o->doc, ncap * 8);
        if (!a) return -1;
        o->doc = a;
        a = (int64_t *)realloc(o->ntok, ncap * 8);
        if (!a) return -1;
        o->ntok = a; o->lcap = ncap;
    }
    o->doc[o->nl] = doc; o->ntok[o->nl] = ntok;
    o->off[++o->nl] = (int64_t)o->len;
    return 0;
}

/* Stable sort of the marks in [a, b) by combining class, as NFD's canonical ordering does; a
 * counting pass per class present keeps it linear however long the run. */
static int sort_marks(Out *o, uint8_t *a, uint8_t *b) {
    size_t n = (size_t)(b - a);
    if (o->scap < n) {
        uint8_t *t = (uint8_t *)realloc(o->scratch, n);
        if (!t) return -1;
        o->scratch = t; o->scap = n;
    }
    uint8_t *t = o->scratch;
    int len, done = -1;
    for (;;) {
        int next = 256;
        for (uint8_t *q = a; q < b; q += len) {
            int c = ns_ccc(decode(q, b, &len));
            if (c > done && c < next) next = c;
        }
        if (next == 256) break;
        for (uint8_t *q = a; q < b; q += len) {
            if (ns_ccc(decode(q, b, &len)) == next) { memcpy(t, q, (size_t)len); t += len; }
        }
        done = next;
    }
    memcpy(a, o->scratch, n);
    return 0;
}

/* Bytes of input handled between two capacity checks; the worst character (a Hangul syllable,
 * 3 bytes -> 3 jamo) writes at most 4 bytes per input byte, separators included. */
#define SEG 4096
#define SEG_ROOM (4 * SEG + 64)
#define NO_RUN SIZE_MAX

typedef struct {
    int64_t ntok;      /* tokens in the output line so far */
    int in_word;       /* the last thing written continues a word */
    size_t run;        /* where the current run of surviving combining marks starts, or NO_RUN */
    int run_max;       /* highest class in the run so far */
    int unsorted;      /* the run has a mark after one of a higher class */
    /* normalise-only mode: the line is CCNet's normalize(line) exactly */
    int started;       /* a character that strip() keeps has been seen on this line */
    int kept;          /* this document has written a line (per document: join with a space) */
    size_t line_start; /* output offset where this line began */
    size_t keep;       /* output offset after the last character that strip() keeps */
    int64_t line_tok0; /* ntok when this line began */
} State;

static inline uint8_t *start_token(uint8_t *w, State *st, int raw) {
    if (st->ntok && !raw) *w++ = ' ';
    st->ntok++;
    return w;
}

static inline uint8_t *word_bytes(uint8_t *w, State *st, const uint8_t *b, int n, int raw) {
    if (!st->in_word) { w = start_token(w, st, raw); st->in_word = 1; }
    memcpy(w, b, (size_t)n);
    return w + n;
}

static inline uint8_t *punct_bytes(uint8_t *w, State *st, const uint8_t *b, int n, int raw) {
    w = start_token(w, st, raw);
    memcpy(w, b, (size_t)n);
    st->in_word = 0;
    return w + n;
}

/* A surviving combining mark: it joins the current run (a word char, so no separator comes
 * between marks of one run); END_RUN sorts the run if needed before anything else is written. */
static inline uint8_t *mark_bytes(uint8_t *w, State *st, uint8_t *base, const uint8_t *b, int n, int raw) {
    int len, ccc = ns_ccc(decode(b, b + n, &len));
    if (!st->in_word) { w = start_token(w, st, raw); st->in_word = 1; }
    if (st->run == NO_RUN) { st->run = (size_t)(w - base); st->run_max = ccc; }
    else if (ccc < st->run_max) st->unsorted = 1;
    else st->run_max = ccc;
    memcpy(w, b, (size_t)n);
    return w + n;
}

/* Any starter (every character but a mark with a class) ends a run of marks. */
#define END_RUN()                                                                      \
    do {                                                                               \
        if (st.run != NO_RUN) {                                                        \
            if (st.unsorted && sort_marks(o, base + st.run, w) < 0) return -1;         \
            st.run = NO_RUN; st.unsorted = 0;                                          \
        }                                                                              \
    } while (0)

/* Normalise-only mode, around a character strip() keeps: the first one starts the line (after
 * a space joining it to the document's previous line), and the line keeps all up to the last. */
#define KEPT_BEFORE()                                                                  \
    do {                                                                               \
        if (raw && !st.started) {                                                      \
            st.started = 1;                                                            \
            if (!per_line && st.kept) *w++ = ' ';                                      \
        }                                                                              \
    } while (0)
#define KEPT_AFTER() do { if (raw) st.keep = (size_t)(w - base); } while (0)

/* A line ends: tokenised, nothing to undo; normalised, drop the whitespace strip() removes, or
 * the whole line when it has no token (so both modes give the same lines). */
#define END_LINE()                                                                     \
    do {                                                                               \
        END_RUN();                                                                     \
        if (raw) {                                                                     \
            if (st.ntok > st.line_tok0) { w = base + st.keep; st.kept = 1; }           \
            else w = base + st.line_start;                                             \
        }                                                                              \
        if (per_line && st.ntok) {                                                     \
            o->len = (size_t)(w - base);                                               \
            if (push_line(o, doc, st.ntok) < 0) return -1;                             \
            st.ntok = 0;                                                               \
        }                                                                              \
        st.in_word = 0; st.started = 0;                                                \
        st.line_start = st.keep = (size_t)(w - base);                                  \
        st.line_tok0 = st.ntok;                                                        \
    } while (0)

/* The lines of one document; returns -1 when out of memory. Inlined twice, so raw (normalise
 * only, no tokens) costs the tokenising loop nothing. */
static inline __attribute__((always_inline)) int doc_lines(Out *o, const uint8_t *lo, const uint8_t *hi, Py_ssize_t doc,
                                                           int per_line, size_t *hint, const int raw) {
    State st = {0, 0, NO_RUN, 0, 0, 0, 0, o->len, o->len, 0};
    const uint8_t *p = lo;
    uint8_t *base = o->text, *w = base + o->len;
    while (p < hi) {
        if (reserve_text(o, SEG_ROOM) < 0) return -1;
        const uint8_t *seg = hi - p > SEG ? p + SEG : hi;
        base = o->text; w = base + o->len;
        while (p < seg) {
            uint8_t b = *p;
            uint8_t a = CC_ACLS[b];
            if (a == A_WORD) {
                END_RUN();
                KEPT_BEFORE();
                if (!st.in_word) { w = start_token(w, &st, raw); st.in_word = 1; }
                do { *w++ = CC_AMAP[*p++]; } while (p < seg && CC_ACLS[*p] == A_WORD);
                KEPT_AFTER();
                continue;
            }
            if (a != A_HIGH) {
                p++;
                if (a == A_EOL) { END_LINE(); continue; }
                END_RUN();
                if (a == A_PUNCT) { KEPT_BEFORE(); w = punct_bytes(w, &st, &b, 1, raw); KEPT_AFTER(); }
                else if (a == A_SPACE) { st.in_word = 0; if (raw && st.started) *w++ = ' '; }
                else if (a == A_DROP) { KEPT_BEFORE(); KEPT_AFTER(); }
                continue;
            }
            int n;
            const uint8_t *at = p;
            uint32_t cp = decode(p, hi, &n);
            p += n;
            if (n == 1) { at = (const uint8_t *)"\xEF\xBF\xBD"; n = 3; }  /* a malformed byte: copy U+FFFD */
            uint32_t v = cp < 0x800 ? CC_VAL2[cp - 0x80] : cc_val(cp, hint);
            int kind = v & 15, space = v & 16;
            if (kind == K_NS) { KEPT_BEFORE(); w = mark_bytes(w, &st, base, at, n, raw); KEPT_AFTER(); continue; }
            if (kind == K_DROPN) { KEPT_BEFORE(); KEPT_AFTER(); continue; }
            END_RUN();
            if (!space) KEPT_BEFORE();
            switch (kind) {
            case K_WORD: w = word_bytes(w, &st, at, n, raw); break;
            case K_PUNCT: w = punct_bytes(w, &st, at, n, raw); break;
            case K_SPACE:
                st.in_word = 0;
                if (raw && st.started) { memcpy(w, at, (size_t)n); w += n; }
                break;
            case K_DROP0: break;
            case K_ZERO: w = word_bytes(w, &st, (const uint8_t *)"0", 1, raw); break;
            case K_SIGMA:
                w = word_bytes(w, &st, (const uint8_t *)(final_sigma(lo, at, p, hi) ? "\xCF\x82" : "\xCF\x83"), 2, raw);
                break;
            case K_HANGUL: {
                uint8_t j[12];
                uint32_t s = cp - 0xAC00;
                int m = (int)put_utf8(j, 0x1100 + s / 588);
                m += (int)put_utf8(j + m, 0x1161 + (s % 588) / 28);
                if (s % 28) m += (int)put_utf8(j + m, 0x11A7 + s % 28);
                w = word_bytes(w, &st, j, m, raw);
                break;
            }
            default: {  /* K_EXC: starts with a starter, may end with marks */
                const uint8_t *e = CC_POOL + (v >> 5);
                int count = *e++;
                for (int i = 0; i < count; i++) {
                    int cls = e[0] >> 4, len = e[0] & 15;
                    e++;
                    if (cls == C_NS) w = mark_bytes(w, &st, base, e, len, raw);
                    else {
                        END_RUN();
                        if (cls == C_WORD) w = word_bytes(w, &st, e, len, raw);
                        else if (cls == C_PUNCT) w = punct_bytes(w, &st, e, len, raw);
                        else {
                            st.in_word = 0;
                            if (raw && st.started) { memcpy(w, e, (size_t)len); w += len; }
                        }
                    }
                    e += len;
                }
            }
            }
            if (!space) KEPT_AFTER();
        }
        o->len = (size_t)(w - base);
    }
    END_LINE();
    o->len = (size_t)(w - base);
    if (!per_line) return push_line(o, doc, st.ntok);
    return 0;
}

static PyObject *py_ccnet_lines(PyObject *self, PyObject *args) {
    PyObject *po, *pd;
    int wide, per_line, tokenize = 1;
    if (!PyArg_ParseTuple(args, "OOpp|p", &po, &pd, &wide, &per_line, &tokenize)) return NULL;
    Strings s;
    if (get_strings(po, pd, wide, &s) < 0) return NULL;
    if (check_offsets(&s) < 0) { release_strings(&s); return NULL; }
    Out o = {0};
    int failed = 0;
    const uint8_t *data = (const uint8_t *)s.data.buf;
    Py_BEGIN_ALLOW_THREADS
    size_t hint = 0;
    o.lcap = 1024;
    o.off = (int64_t *)malloc(o.lcap * 8); o.doc = (int64_t *)malloc(o.lcap * 8); o.ntok = (int64_t *)malloc(o.lcap * 8);
    if (!o.off || !o.doc || !o.ntok) failed = 1;
    else o.off[0] = 0;
    /* prose grows by a few percent (spaces around punctuation): one allocation usually does */
    size_t total = s.n ? (size_t)(off_at(&s, s.n) - off_at(&s, 0)) : 0;
    if (!failed && reserve_text(&o, total + total / 8 + SEG_ROOM) < 0) failed = 1;
    for (Py_ssize_t i = 0; i < s.n && !failed; i++) {
        const uint8_t *lo = data + off_at(&s, i), *hi = data + off_at(&s, i + 1);
        if ((tokenize ? doc_lines(&o, lo, hi, i, per_line, &hint, 0) : doc_lines(&o, lo, hi, i, per_line, &hint, 1)) < 0)
            failed = 1;
    }
    Py_END_ALLOW_THREADS
    release_strings(&s);
    PyObject *res = NULL;
    if (failed) PyErr_NoMemory();
    else res = Py_BuildValue("(y#y#y#y#)", (const char *)o.text ? (const char *)o.text : "", (Py_ssize_t)o.len,
                             (const char *)o.off, (Py_ssize_t)((o.nl + 1) * 8),
                             (const char *)o.doc, (Py_ssize_t)(o.nl * 8), (const char *)o.ntok, (Py_ssize_t)(o.nl * 8));
    free(o.text); free(o.off); free(o.doc); free(o.ntok); free(o.scratch);
    return res;
}

static PyMethodDef methods[] = {
    {"ccnet_lines", py_ccnet_lines, METH_VARARGS,
     "ccnet_lines(offsets, data, wide, per_line, tokenize=True) -> (text, line_offsets, line_doc, line_ntok): "
     "CCNet-normalised, space-separated word tokens (or, tokenize=False, the normalised text) of each line "
     "(or document) of an Arrow string array."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tokenize", "CCNet word tokeniser over Arrow string buffers.", -1, methods};

PyMODINIT_FUNC PyInit__tokenize(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "UNICODE_VERSION", CCNET_UNICODE_VERSION) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
