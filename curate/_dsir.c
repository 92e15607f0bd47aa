/* curate._dsir: DSIR's hashed n-gram features (Xie et al. 2023) over whole Arrow string arrays.
 *
 * ngram_buckets(offsets, data, wide, nbuckets, ngrams, counts, weights, out, ntok)
 *
 * Each document is featurised exactly as data-selection's HashedNgramDSIR does it:
 *   words = WordPunctTokenizer().tokenize(text.lower())      # nltk: the regex \w+|[^\w\s]+
 *   bucket(s) = int(sha256(s.encode()).hexdigest(), 16) % nbuckets
 *   features: bucket of every word, and of every ' '.join of 2..ngrams consecutive words.
 * Lower-casing is Python's own str.lower() (final sigma and all); \w and \s are the classes of
 * nltk's regex engine, from _dsir_tables.h (scripts/gen_dsir_tables.py), so tokens are nltk's.
 * counts (int64[nbuckets] or None): every feature's bucket is counted (fitting).
 * weights (float64[nbuckets] or None): out[i] = sum of weights[bucket] over document i's features,
 * i.e. dot(weights, features) (scoring). ntok (int64[n] or None): words per document.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_strings.h"

/* ---- SHA-256 (FIPS 180-4), streaming: an n-gram is hashed piece by piece, never copied ---- */

typedef struct {
    uint32_t h[8];
    uint8_t buf[64];
    uint64_t len;  /* bytes so far */
    size_t used;   /* bytes in buf */
} Sha;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t *h, const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) | ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static inline void sha_init(Sha *s) {
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, H0, sizeof H0);
    s->len = 0;
    s->used = 0;
}

static void sha_update(Sha *s, const uint8_t *p, size_t n) {
    s->len += n;
    if (s->used) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->buf + s->used, p, take);
        s->used += take; p += take; n -= take;
        if (s->used < 64) return;
        sha_block(s->h, s->buf);
        s->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) sha_block(s->h, p);
    memcpy(s->buf, p, n);
    s->used = n;
}

/* The digest as a big-endian 256-bit integer, modulo m (< 2^32): Python's int(hexdigest, 16) % m. */
static uint32_t sha_final_mod(Sha *s, uint64_t m) {
    uint64_t bits = s->len * 8;
    s->buf[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->buf + s->used, 0, 64 - s->used);
        sha_block(s->h, s->buf);
        s->used = 0;
    }
    memset(s->buf + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++) s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_block(s->h, s->buf);
    uint64_t r = 0;
    for (int i = 0; i < 8; i++) r = ((r << 32) | s->h[i]) % m;  /* r < 2^32: no overflow */
    return (uint32_t)r;
}

/* ---- tokens ------------------------------------------------------------------------------ */

#include "_dsir_tables.h"

enum { C_SPACE, C_WORD, C_PUNCT };

static inline int cls(Py_UCS4 c) {
    if (c < 128) return DSIR_ASCII[c];
    int lo = 0, hi = DSIR_NRANGES - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (c < DSIR_RANGES[mid][0]) hi = mid - 1;
        else if (c > DSIR_RANGES[mid][1]) lo = mid + 1;
        else return (int)DSIR_RANGES[mid][2];
    }
    return C_PUNCT;
}

static inline int utf8_len(Py_UCS4 c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

#define MAX_N 8

/* ---- a memo of recent n-gram buckets --------------------------------------------------------
 * Words follow Zipf's law, so most n-grams were seen a moment ago: a direct-mapped table of short
 * n-grams (their bytes kept and compared, so a hit is exact) skips most SHA-256 computations.
 * Fixed size: memory does not grow with the corpus; results do not depend on it. */
#define MEMO_BITS 18
#define MEMO_KEY 38
typedef struct {
    uint64_t h;
    uint32_t bucket;
    uint8_t len, used;
    uint8_t key[MEMO_KEY];
} Memo;
static Memo *memo = NULL;
static uint64_t memo_nbuckets = 0;

static inline uint64_t fast_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

typedef struct {
    uint64_t nbuckets;
    int ngrams;
    int64_t *counts;        /* or NULL */
    const double *weights;  /* or NULL */
} Job;

/* Features of one lower-cased document; returns its number of words, sums weights into *score. */
static int64_t featurise(const Job *job, PyObject *low, double *score) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(low);
    int kind = PyUnicode_KIND(low);
    const void *d = PyUnicode_DATA(low);
    const uint8_t *u8;
    if (PyUnicode_IS_ASCII(low)) {
        u8 = (const uint8_t *)d;
    } else {
        Py_ssize_t blen;
        u8 = (const uint8_t *)PyUnicode_AsUTF8AndSize(low, &blen);
        if (u8 == NULL) return -1;
    }
    /* the last ngrams-1 words, as byte spans of u8: a ring */
    Py_ssize_t start[MAX_N], size[MAX_N];
    int64_t words = 0;
    double sum = 0.0;
    Py_ssize_t i = 0, p = 0;
    while (i < len) {
        Py_UCS4 c = PyUnicode_READ(kind, d, i);
        int k = cls(c);
        if (k == C_SPACE) { i++; p += utf8_len(c); continue; }
        Py_ssize_t s0 = p;
        do {
            p += utf8_len(c);
            if (++i >= len) break;
            c = PyUnicode_READ(kind, d, i);
        } while (cls(c) == k);
        int slot = (int)(words % job->ngrams);
        start[slot] = s0;
        size[slot] = p - s0;
        words++;
        for (int n = 1; n <= job->ngrams && n <= words; n++) {
            uint8_t key[MEMO_KEY];
            size_t klen = 0;
            int fits = 1;
            for (int j = n - 1; j >= 0 && fits; j--) {  /* words[-n] ... words[-1], joined by ' ' */
                int q = (int)((words - 1 - j) % job->ngrams);
                if (klen + (size_t)size[q] + (j ? 1 : 0) > MEMO_KEY) { fits = 0; break; }
                memcpy(key + klen, u8 + start[q], (size_t)size[q]);
                klen += (size_t)size[q];
                if (j) key[klen++] = ' ';
            }
            uint32_t b;
            Memo *e = NULL;
            uint64_t h = 0;
            if (fits && memo) {
                h = fast_hash(key, klen);
                e = &memo[h >> (64 - MEMO_BITS)];
                if (e->used && e->h == h && e->len == klen && memcmp(e->key, key, klen) == 0) {
                    b = e->bucket;
                    goto have;
                }
            }
            Sha sh;
            sha_init(&sh);
            if (fits) {
                sha_update(&sh, key, klen);
            } else {
                for (int j = n - 1; j >= 0; j--) {
                    int q = (int)((words - 1 - j) % job->ngrams);
                    sha_update(&sh, u8 + start[q], (size_t)size[q]);
                    if (j) sha_update(&sh, (const uint8_t *)" ", 1);
                }
            }
            b = sha_final_mod(&sh, job->nbuckets);
            if (e) {
                e->h = h; e->bucket = b; e->len = (uint8_t)klen; e->used = 1;
                memcpy(e->key, key, klen);
            }
        have:
            if (job->counts) job->counts[b]++;
            if (job->weights) sum += job->weights[b];
        }
    }
    *score = sum;
    return words;
}

static int opt_buffer(PyObject *obj, Py_buffer *b, Py_ssize_t need, int *have) {
    *have = 0;
    if (obj == Py_None) return 0;
    if (get_out(obj, b, need) < 0) return -1;
    *have = 1;
    return 0;
}

static PyObject *py_ngram_buckets(PyObject *self, PyObject *args) {
    PyObject *offsets, *data, *counts_o, *weights_o, *out_o, *ntok_o;
    int wide, ngrams;
    unsigned long long nbuckets;
    if (!PyArg_ParseTuple(args, "OOpKiOOOO", &offsets, &data, &wide, &nbuckets, &ngrams, &counts_o, &weights_o,
                          &out_o, &ntok_o))
        return NULL;
    if (nbuckets < 1 || nbuckets > 0x7fffffffULL) return PyErr_Format(PyExc_ValueError, "nbuckets must be in 1..2^31-1");
    if (ngrams < 1 || ngrams > MAX_N) return PyErr_Format(PyExc_ValueError, "ngrams must be in 1..%d", MAX_N);
    Strings s;
    if (get_strings(offsets, data, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    Py_buffer cb, wb, ob, tb;
    int hc = 0, hw = 0, ho = 0, ht = 0;
    PyObject *ret = NULL;
    if (opt_buffer(counts_o, &cb, (Py_ssize_t)(nbuckets * 8), &hc) < 0) goto done;
    if (opt_buffer(weights_o, &wb, (Py_ssize_t)(nbuckets * 8), &hw) < 0) goto done;
    if (opt_buffer(out_o, &ob, s.n * 8, &ho) < 0) goto done;
    if (opt_buffer(ntok_o, &tb, s.n * 8, &ht) < 0) goto done;
    if (hw != ho) { PyErr_SetString(PyExc_ValueError, "weights and out go together"); goto done; }
    Job job = {nbuckets, ngrams, hc ? (int64_t *)cb.buf : NULL, hw ? (const double *)wb.buf : NULL};
    if (memo == NULL) memo = (Memo *)PyMem_RawCalloc((size_t)1 << MEMO_BITS, sizeof(Memo));  /* NULL: no memo */
    if (memo && memo_nbuckets != nbuckets) {  /* a bucket is only valid for its modulus */
        memset(memo, 0, sizeof(Memo) << MEMO_BITS);
        memo_nbuckets = nbuckets;
    }
    const char *base = (const char *)s.data.buf;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        int64_t a = off_at(&s, i), z = off_at(&s, i + 1);
        if (z < a) { PyErr_SetString(PyExc_ValueError, "offsets do not rise"); goto done; }
        PyObject *u = PyUnicode_DecodeUTF8(base + a, (Py_ssize_t)(z - a), "strict");
        if (u == NULL) goto done;
        PyObject *low = PyObject_CallMethod(u, "lower", NULL);
        Py_DECREF(u);
        if (low == NULL) goto done;
        double score = 0.0;
        int64_t w = featurise(&job, low, &score);
        Py_DECREF(low);
        if (w < 0) goto done;
        if (ho) ((double *)ob.buf)[i] = score;
        if (ht) ((int64_t *)tb.buf)[i] = w;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    if (hc) PyBuffer_Release(&cb);
    if (hw) PyBuffer_Release(&wb);
    if (ho) PyBuffer_Release(&ob);
    if (ht) PyBuffer_Release(&tb);
    release_strings(&s);
    return ret;
}

static PyObject *py_bucket(PyObject *self, PyObject *args) {
    const char *p;
    Py_ssize_t n;
    unsigned long long nbuckets;
    if (!PyArg_ParseTuple(args, "y#K", &p, &n, &nbuckets)) return NULL;
    if (nbuckets < 1 || nbuckets > 0x7fffffffULL) return PyErr_Format(PyExc_ValueError, "nbuckets must be in 1..2^31-1");
    Sha sh;
    sha_init(&sh);
    sha_update(&sh, (const uint8_t *)p, (size_t)n);
    return PyLong_FromUnsignedLong(sha_final_mod(&sh, nbuckets));
}

static PyMethodDef methods[] = {
    {"ngram_buckets", py_ngram_buckets, METH_VARARGS,
     "ngram_buckets(offsets, data, wide, nbuckets, ngrams, counts, weights, out, ntok): DSIR hashed n-gram features "
     "of each string; counts += bucket counts, out = dot(weights, features), ntok = words (each may be None)."},
    {"bucket", py_bucket, METH_VARARGS, "bucket(data: bytes, nbuckets) -> int(sha256(data).hexdigest(), 16) % nbuckets"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dsir", "DSIR hashed n-gram features over Arrow string buffers.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__dsir(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "TABLES", DSIR_TABLES) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
