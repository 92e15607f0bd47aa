/* curate._native: the hot loops of dedup, over whole Arrow string buffers.
 *
 * Every function takes the offsets and data buffers of an Arrow string array (int32 or int64
 * offsets) and writes into a caller-allocated numpy buffer, so Python never loops per document
 * or per shingle. Hashes: MurmurHash64A and MurmurHash3_x64_128 (Austin Appleby, public domain).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "_unicode_tables.h"

static inline uint64_t rotl64(uint64_t x, int8_t r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t load64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* MurmurHash64A */
static uint64_t murmur64(const uint8_t *data, size_t len, uint64_t seed) {
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    uint64_t h = seed ^ (len * m);
    size_t nblocks = len / 8;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k = load64(data + 8 * i);
        k *= m; k ^= k >> r; k *= m;
        h ^= k; h *= m;
    }
    const uint8_t *tail = data + nblocks * 8;
    switch (len & 7) {
        case 7: h ^= (uint64_t)tail[6] << 48; /* fall through */
        case 6: h ^= (uint64_t)tail[5] << 40; /* fall through */
        case 5: h ^= (uint64_t)tail[4] << 32; /* fall through */
        case 4: h ^= (uint64_t)tail[3] << 24; /* fall through */
        case 3: h ^= (uint64_t)tail[2] << 16; /* fall through */
        case 2: h ^= (uint64_t)tail[1] << 8;  /* fall through */
        case 1: h ^= (uint64_t)tail[0]; h *= m;
    }
    h ^= h >> r; h *= m; h ^= h >> r;
    return h;
}

/* MurmurHash3_x64_128 */
static void murmur128(const uint8_t *data, size_t len, uint64_t seed, uint64_t *out) {
    const size_t nblocks = len / 16;
    uint64_t h1 = seed, h2 = seed;
    const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1 = load64(data + 16 * i), k2 = load64(data + 16 * i + 8);
        k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
        h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
        k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
    }
    const uint8_t *tail = data + nblocks * 16;
    uint64_t k1 = 0, k2 = 0;
    switch (len & 15) {
        case 15: k2 ^= (uint64_t)tail[14] << 48; /* fall through */
        case 14: k2 ^= (uint64_t)tail[13] << 40; /* fall through */
        case 13: k2 ^= (uint64_t)tail[12] << 32; /* fall through */
        case 12: k2 ^= (uint64_t)tail[11] << 24; /* fall through */
        case 11: k2 ^= (uint64_t)tail[10] << 16; /* fall through */
        case 10: k2 ^= (uint64_t)tail[9] << 8;   /* fall through */
        case 9:  k2 ^= (uint64_t)tail[8];
                 k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2; /* fall through */
        case 8:  k1 ^= (uint64_t)tail[7] << 56; /* fall through */
        case 7:  k1 ^= (uint64_t)tail[6] << 48; /* fall through */
        case 6:  k1 ^= (uint64_t)tail[5] << 40; /* fall through */
        case 5:  k1 ^= (uint64_t)tail[4] << 32; /* fall through */
        case 4:  k1 ^= (uint64_t)tail[3] << 24; /* fall through */
        case 3:  k1 ^= (uint64_t)tail[2] << 16; /* fall through */
        case 2:  k1 ^= (uint64_t)tail[1] << 8;  /* fall through */
        case 1:  k1 ^= (uint64_t)tail[0];
                 k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    }
    h1 ^= len; h2 ^= len;
    h1 += h2; h2 += h1;
    h1 = fmix64(h1); h2 = fmix64(h2);
    h1 += h2; h2 += h1;
    out[0] = h1; out[1] = h2;
}

/* ---- argument plumbing: buffers in, buffers out ------------------------------------------ */

#include "_strings.h"

/* hash128(offsets, data, wide, out, seed): out[2i], out[2i+1] = MurmurHash3_x64_128 of string i */
static PyObject *py_hash128(PyObject *self, PyObject *args) {
    PyObject *o, *d, *out; int wide; unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOpOK", &o, &d, &wide, &out, &seed)) return NULL;
    Strings s; Py_buffer ob;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0 || get_out(out, &ob, s.n * 16) < 0) { release_strings(&s); return NULL; }
    const uint8_t *base = (const uint8_t *)s.data.buf;
    uint64_t *res = (uint64_t *)ob.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s.n; i++) {
        int64_t a = off_at(&s, i), b = off_at(&s, i + 1);
        murmur128(base + a, (size_t)(b - a), seed, res + 2 * i);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ob); release_strings(&s);
    Py_RETURN_NONE;
}

/* Shingles of one document, each hashed with murmur64, passed to a callback-free inline loop.
 * word mode: text is already normalised to words separated by single spaces; a shingle is the
 * byte span of `ngram` consecutive words; fewer words than ngram: the whole text is one shingle.
 * char mode: a shingle is `ngram` consecutive UTF-8 characters; shorter texts are one shingle. */
static inline int is_cont(uint8_t c) { return (c & 0xC0) == 0x80; }

/* Where each unit (word or character) starts; returns how many. `starts` holds len entries. */
static size_t unit_starts(const uint8_t *t, size_t len, int char_mode, int64_t *starts) {
    size_t nu = 0;
    if (char_mode) {
        for (size_t j = 0; j < len; j++) if (!is_cont(t[j])) starts[nu++] = (int64_t)j;
    } else {
        int in_word = 0;
        for (size_t j = 0; j < len; j++) {
            if (t[j] == ' ') in_word = 0;
            else if (!in_word) { starts[nu++] = (int64_t)j; in_word = 1; }
        }
    }
    return nu;
}

static inline size_t shingle_count(size_t nu, int ngram) {
    return nu == 0 ? 0 : (nu >= (size_t)ngram ? nu - (size_t)ngram + 1 : 1);
}

/* Hash of shingle u: the bytes from unit u to the start of unit u+ngram (without the separating
 * space in word mode); a text of fewer units than ngram is one shingle. */
static inline uint64_t shingle_hash(const uint8_t *t, size_t len, const int64_t *starts, size_t nu,
                                    size_t u, int ngram, int char_mode, uint64_t seed) {
    size_t a0 = (size_t)starts[u], a1, last = u + (size_t)ngram;
    if (nu < (size_t)ngram) { a0 = (size_t)starts[0]; a1 = len; }
    else if (last < nu) a1 = (size_t)starts[last];
    else a1 = len;
    if (!char_mode) while (a1 > a0 && t[a1 - 1] == ' ') a1--;
    return murmur64(t + a0, a1 - a0, seed);
}

/* The permutations: value_k(h) = ((a_k * h + b_k) mod 2^64) >> 32 for a 32-bit shingle hash h
 * (multiply-add-shift). With a = ahi * 2^32 + alo this is ((alo * h + b) >> 32) + ahi * h mod 2^32:
 * two 32x32->64 multiplies, which SIMD has (pmuludq) where a 64-bit multiply has none. Every path
 * below computes the same integers, so signatures do not depend on the CPU. */
typedef struct { uint64_t *lo, *hi; const uint64_t *b; Py_ssize_t k; } Perms;

static void perms_scalar(const Perms *p, Py_ssize_t k0, const uint32_t *hs, size_t n, uint32_t *row) {
    for (Py_ssize_t k = k0; k < p->k; k++) {
        const uint64_t lo = p->lo[k], b = p->b[k]; const uint32_t hi = (uint32_t)p->hi[k];
        uint32_t m = 0xFFFFFFFFu;
        for (size_t u = 0; u < n; u++) {
            uint32_t v = (uint32_t)((lo * hs[u] + b) >> 32) + hi * hs[u];
            m = v < m ? v : m;
        }
        row[k] = m;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* 16 permutations at a time, 4 per register in 64-bit lanes (the low 32 bits hold the value), the
 * running minima kept in registers over all shingles of the document. */
__attribute__((target("avx2")))
static void perms_avx2(const Perms *p, const uint32_t *hs, size_t n, uint32_t *row) {
    Py_ssize_t k = 0;
    for (; k + 16 <= p->k; k += 16) {
        const __m256i *lo = (const __m256i *)(p->lo + k), *hi = (const __m256i *)(p->hi + k);
        const __m256i *b = (const __m256i *)(p->b + k);
        __m256i l0 = _mm256_loadu_si256(lo), l1 = _mm256_loadu_si256(lo + 1), l2 = _mm256_loadu_si256(lo + 2), l3 = _mm256_loadu_si256(lo + 3);
        __m256i h0 = _mm256_loadu_si256(hi), h1 = _mm256_loadu_si256(hi + 1), h2 = _mm256_loadu_si256(hi + 2), h3 = _mm256_loadu_si256(hi + 3);
        __m256i m0 = _mm256_set1_epi32(-1), m1 = m0, m2 = m0, m3 = m0;
        for (size_t u = 0; u < n; u++) {
            const __m256i x = _mm256_set1_epi64x((long long)hs[u]);
#define CURATE_PERM4(m, l, h, j) m = _mm256_min_epu32(m, _mm256_add_epi32(_mm256_srli_epi64( \
        _mm256_add_epi64(_mm256_mul_epu32(l, x), _mm256_loadu_si256(b + j)), 32), _mm256_mul_epu32(h, x)))
            CURATE_PERM4(m0, l0, h0, 0); CURATE_PERM4(m1, l1, h1, 1); CURATE_PERM4(m2, l2, h2, 2); CURATE_PERM4(m3, l3, h3, 3);
#undef CURATE_PERM4
        }
        uint32_t t[32];
        _mm256_storeu_si256((__m256i *)t, m0); _mm256_storeu_si256((__m256i *)(t + 8), m1);
        _mm256_storeu_si256((__m256i *)(t + 16), m2); _mm256_storeu_si256((__m256i *)(t + 24), m3);
        for (int q = 0; q < 16; q++) row[k + q] = t[2 * q];
    }
    perms_scalar(p, k, hs, n, row);
}

__attribute__((target("sse4.1")))
static void perms_sse41(const Perms *p, const uint32_t *hs, size_t n, uint32_t *row) {
    Py_ssize_t k = 0;
    for (; k + 8 <= p->k; k += 8) {
        const __m128i *lo = (const __m128i *)(p->lo + k), *hi = (const __m128i *)(p->hi + k);
        const __m128i *b = (const __m128i *)(p->b + k);
        __m128i l0 = _mm_loadu_si128(lo), l1 = _mm_loadu_si128(lo + 1), l2 = _mm_loadu_si128(lo + 2), l3 = _mm_loadu_si128(lo + 3);
        __m128i h0 = _mm_loadu_si128(hi), h1 = _mm_loadu_si128(hi + 1), h2 = _mm_loadu_si128(hi + 2), h3 = _mm_loadu_si128(hi + 3);
        __m128i m0 = _mm_set1_epi32(-1), m1 = m0, m2 = m0, m3 = m0;
        for (size_t u = 0; u < n; u++) {
            const __m128i x = _mm_set1_epi64x((long long)hs[u]);
#define CURATE_PERM2(m, l, h, j) m = _mm_min_epu32(m, _mm_add_epi32(_mm_srli_epi64( \
        _mm_add_epi64(_mm_mul_epu32(l, x), _mm_loadu_si128(b + j)), 32), _mm_mul_epu32(h, x)))
            CURATE_PERM2(m0, l0, h0, 0); CURATE_PERM2(m1, l1, h1, 1); CURATE_PERM2(m2, l2, h2, 2); CURATE_PERM2(m3, l3, h3, 3);
#undef CURATE_PERM2
        }
        uint32_t t[16];
        _mm_storeu_si128((__m128i *)t, m0); _mm_storeu_si128((__m128i *)(t + 4), m1);
        _mm_storeu_si128((__m128i *)(t + 8), m2); _mm_storeu_si128((__m128i *)(t + 12), m3);
        for (int q = 0; q < 8; q++) row[k + q] = t[2 * q];
    }
    perms_scalar(p, k, hs, n, row);
}

static int simd_level(void) {
    static int level = -1;
    if (level < 0) {
        const char *force = getenv("CURATE_SIMD");  /* "scalar", "sse4.1": for tests of each path */
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("sse4.1") ? 1 : 0;
        if (force && strcmp(force, "scalar") == 0) level = 0;
        else if (force && strcmp(force, "sse4.1") == 0 && level > 1) level = 1;
    }
    return level;
}

static void apply_perms(const Perms *p, const uint32_t *hs, size_t n, uint32_t *row, int level) {
    if (level == 2) perms_avx2(p, hs, n, row);
    else if (level == 1) perms_sse41(p, hs, n, row);
    else perms_scalar(p, 0, hs, n, row);
}
#else
static int simd_level(void) { return 0; }
static void apply_perms(const Perms *p, const uint32_t *hs, size_t n, uint32_t *row, int level) {
    (void)level; perms_scalar(p, 0, hs, n, row);
}
#endif

/* The distinct shingles of one string feeding HyperLogLog registers: an open-addressing set of
 * 32-bit hashes, emptied per string by a stamp (slot value, and the string that filled it). */
typedef struct { uint32_t *tv, *ts, stamp; size_t cap; int p; int8_t *reg; } Distinct;

static int distinct_next(Distinct *q, size_t m) {  /* room for m hashes, empty; -1: no memory */
    if (q->cap < 2 * m || q->stamp == UINT32_MAX) {
        size_t nc = q->cap; while (nc < 2 * m) nc = nc ? 2 * nc : 64;
        free(q->tv); free(q->ts);
        q->tv = (uint32_t *)malloc(nc * 4); q->ts = (uint32_t *)calloc(nc, 4);
        q->cap = nc; q->stamp = 0;
        if (!q->tv || !q->ts) return -1;
    }
    q->stamp++;
    return 0;
}

/* 1 if h is new to the string (then counted in the registers: datasketch's rule, register = low p
 * bits, rank = 32 - p - bit_length of the rest + 1), else 0 */
static inline int distinct_add(Distinct *q, uint32_t h) {
    size_t j = (size_t)(fmix64(h) & (q->cap - 1));
    while (q->ts[j] == q->stamp && q->tv[j] != h) j = (j + 1) & (q->cap - 1);
    if (q->ts[j] == q->stamp) return 0;
    q->ts[j] = q->stamp; q->tv[j] = h;
    uint32_t bits = h >> q->p, r = h & (((uint32_t)1 << q->p) - 1);
    int8_t rank = (int8_t)(32 - q->p - (bits ? 32 - __builtin_clz(bits) : 0) + 1);
    if (rank > q->reg[r]) q->reg[r] = rank;
    return 1;
}

/* The signatures of every string (see minhash() below) and, with q, each string's distinct
 * shingles counted into q's registers from the same hashes (the audit). Returns the distinct
 * count, -1 when out of memory. Called without the GIL. */
static int64_t minhash_strings(const Strings *s, const uint64_t *A, const uint64_t *B, Py_ssize_t K,
                               uint32_t *sig, int64_t *cnt, int char_mode, int ngram, uint64_t seed,
                               Distinct *q) {
    const uint8_t *base = (const uint8_t *)s->data.buf;
    int failed = 0, level = simd_level();
    int64_t total = 0;
    int64_t *starts = NULL; size_t cap = 0;
    uint32_t *hs = NULL; size_t hcap = 0;
    Perms perms = {(uint64_t *)malloc((size_t)K * 8), (uint64_t *)malloc((size_t)K * 8), B, K};
    if (!perms.lo || !perms.hi) failed = 1;
    else for (Py_ssize_t k = 0; k < K; k++) { perms.lo[k] = A[k] & 0xFFFFFFFFu; perms.hi[k] = A[k] >> 32; }
    for (Py_ssize_t i = 0; i < s->n && !failed; i++) {
        int64_t lo = off_at(s, i), hi = off_at(s, i + 1);
        const uint8_t *t = base + lo; size_t len = (size_t)(hi - lo);
        uint32_t *row = sig + (size_t)i * K;
        for (Py_ssize_t k = 0; k < K; k++) row[k] = 0xFFFFFFFFu;
        size_t nu = 0;
        if (len > 0) {
            if (cap < len + 1) {
                size_t ncap = len + 1 > 2 * cap ? len + 1 : 2 * cap;
                int64_t *p = (int64_t *)realloc(starts, ncap * sizeof(int64_t));
                if (!p) { failed = 1; break; }
                starts = p; cap = ncap;
            }
            nu = unit_starts(t, len, char_mode, starts);
        }
        size_t nsh = shingle_count(nu, ngram);
        if (nsh == 0) { cnt[i] = 0; continue; }
        if (hcap < nsh) {
            size_t ncap = nsh > 2 * hcap ? nsh : 2 * hcap;
            uint32_t *p = (uint32_t *)realloc(hs, ncap * sizeof(uint32_t));
            if (!p) { failed = 1; break; }
            hs = p; hcap = ncap;
        }
        /* 32 bits of each shingle hash: the permutations below map 32-bit inputs */
        for (size_t u = 0; u < nsh; u++) hs[u] = (uint32_t)shingle_hash(t, len, starts, nu, u, ngram, char_mode, seed);
        if (q) {
            if (distinct_next(q, nsh) < 0) { failed = 1; break; }
            for (size_t u = 0; u < nsh; u++) total += distinct_add(q, hs[u]);
        }
        apply_perms(&perms, hs, nsh, row, level);
        cnt[i] = (int64_t)nsh;
    }
    free(starts); free(hs); free(perms.lo); free(perms.hi);
    if (q) { free(q->tv); free(q->ts); }
    return failed ? -1 : total;
}

/* minhash(offsets, data, wide, char_mode, ngram, a, b, out_sig, out_count, seed)
 * out_sig: uint32[n*K], K = len(a) = len(b) (uint64 each); value_k = (a_k*h + b_k) >> 32 (see Perms).
 * out_count: int64[n] shingles per document (0: empty document, signature all 0xFFFFFFFF). */
static PyObject *py_minhash(PyObject *self, PyObject *args) {
    PyObject *o, *d, *pa_, *pb_, *psig, *pcnt; int wide, char_mode, ngram; unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOppiOOOOK", &o, &d, &wide, &char_mode, &ngram, &pa_, &pb_, &psig, &pcnt, &seed)) return NULL;
    if (ngram < 1) { PyErr_SetString(PyExc_ValueError, "ngram must be >= 1"); return NULL; }
    Strings s; Py_buffer ab, bb, sb, cb;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    if (PyObject_GetBuffer(pa_, &ab, PyBUF_SIMPLE) < 0) { release_strings(&s); return NULL; }
    if (PyObject_GetBuffer(pb_, &bb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&ab); release_strings(&s); return NULL; }
    Py_ssize_t K = ab.len / 8;
    if (bb.len / 8 != K || K < 1) {
        PyErr_SetString(PyExc_ValueError, "a and b must be uint64 arrays of the same length");
        PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s); return NULL;
    }
    if (get_out(psig, &sb, s.n * K * 4) < 0) { PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s); return NULL; }
    if (get_out(pcnt, &cb, s.n * 8) < 0) { PyBuffer_Release(&sb); PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s); return NULL; }
    const uint64_t *A = (const uint64_t *)ab.buf, *B = (const uint64_t *)bb.buf;
    uint32_t *sig = (uint32_t *)sb.buf;
    int64_t *cnt = (int64_t *)cb.buf;
    int64_t got;
    Py_BEGIN_ALLOW_THREADS
    got = minhash_strings(&s, A, B, K, sig, cnt, char_mode, ngram, seed, NULL);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&cb); PyBuffer_Release(&sb); PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s);
    if (got < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* shingle_sets(offsets, data, wide, char_mode, ngram, seed) -> (values, lengths): the sorted
 * distinct shingle hashes of every string, concatenated (uint64 bytes), and each set's size
 * (int64 bytes). The same 32 bits minhash() uses, so --verify judges the sets MinHash estimated. */
static PyObject *py_shingle_sets(PyObject *self, PyObject *args) {
    PyObject *o, *d; int wide, char_mode, ngram; unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOppiK", &o, &d, &wide, &char_mode, &ngram, &seed)) return NULL;
    Strings s;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    int64_t total = s.n ? off_at(&s, s.n) - off_at(&s, 0) : 0;
    /* a string of L bytes has at most L + 1 shingles (one for an empty-ish short text) */
    uint64_t *vals = (uint64_t *)malloc(((size_t)total + (size_t)s.n + 1) * sizeof(uint64_t));
    int64_t *lens = (int64_t *)malloc(((size_t)s.n + 1) * sizeof(int64_t));
    int64_t *starts = NULL; size_t cap = 0, w = 0; int failed = !vals || !lens;
    const uint8_t *base = (const uint8_t *)s.data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s.n && !failed; i++) {
        int64_t lo = off_at(&s, i), hi = off_at(&s, i + 1);
        const uint8_t *t = base + lo; size_t len = (size_t)(hi - lo);
        if (cap < len + 1) {
            int64_t *p = (int64_t *)realloc(starts, (len + 1) * sizeof(int64_t));
            if (!p) { failed = 1; break; }
            starts = p; cap = len + 1;
        }
        size_t nu = len ? unit_starts(t, len, char_mode, starts) : 0, m = shingle_count(nu, ngram);
        uint64_t *hs = vals + w;
        for (size_t u = 0; u < m; u++) hs[u] = (uint32_t)shingle_hash(t, len, starts, nu, u, ngram, char_mode, seed);
        size_t k = 0;
        if (m > 0) {
            qsort(hs, m, sizeof(uint64_t), cmp_u64);
            for (size_t r = 0; r < m; r++) if (k == 0 || hs[r] != hs[k - 1]) hs[k++] = hs[r];
        }
        lens[i] = (int64_t)k; w += k;
    }
    free(starts);
    Py_END_ALLOW_THREADS
    release_strings(&s);
    if (failed) { free(vals); free(lens); return PyErr_NoMemory(); }
    PyObject *res = Py_BuildValue("(y#y#)", (const char *)vals, (Py_ssize_t)(w * 8), (const char *)lens, (Py_ssize_t)(s.n * 8));
    free(vals); free(lens);
    return res;
}

/* jaccard_pairs(a_values uint64, a_offsets int64, ia int64[m], b_values, b_offsets, ib int64[m], out float64[m]):
 * out[i] = |A ∩ B| / |A ∪ B| of sorted distinct sets A = a set ia[i], B = b set ib[i] (0 if both empty). */
static PyObject *py_jaccard_pairs(PyObject *self, PyObject *args) {
    PyObject *o[7]; Py_buffer b[7]; int got = 0, bad = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6])) return NULL;
    for (; got < 7; got++) {
        if (PyObject_GetBuffer(o[got], &b[got], got == 6 ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) break;
    }
    if (got < 7) { for (int k = 0; k < got; k++) PyBuffer_Release(&b[k]); return NULL; }
    const uint64_t *av = b[0].buf, *bv = b[3].buf;
    const int64_t *ao = b[1].buf, *ia = b[2].buf, *bo = b[4].buf, *ib = b[5].buf;
    double *out = b[6].buf;
    Py_ssize_t m = b[2].len / 8, na = b[1].len / 8 - 1, nb = b[4].len / 8 - 1;
    if (b[5].len / 8 != m || b[6].len / 8 < m) bad = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m && !bad; i++) {
        if (ia[i] < 0 || ia[i] >= na || ib[i] < 0 || ib[i] >= nb) { bad = 1; break; }
        int64_t x = ao[ia[i]], xe = ao[ia[i] + 1], y = bo[ib[i]], ye = bo[ib[i] + 1];
        if (x < 0 || y < 0 || xe * 8 > b[0].len || ye * 8 > b[3].len) { bad = 1; break; }
        int64_t inter = 0, size = (xe - x) + (ye - y);
        while (x < xe && y < ye) {
            uint64_t p = av[x], q = bv[y];
            inter += p == q; x += p <= q; y += q <= p;
        }
        int64_t uni = size - inter;
        out[i] = uni > 0 ? (double)inter / (double)uni : 0.0;
    }
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 7; k++) PyBuffer_Release(&b[k]);
    if (bad) { PyErr_SetString(PyExc_ValueError, "jaccard_pairs: index or offset out of range"); return NULL; }
    Py_RETURN_NONE;
}

/* band_keys(sig uint32[n*K], K, bands, rows, out uint64[n*bands]): one 64-bit key per band */
static PyObject *py_band_keys(PyObject *self, PyObject *args) {
    PyObject *psig, *pout; Py_ssize_t K, bands, rows;
    if (!PyArg_ParseTuple(args, "OnnnO", &psig, &K, &bands, &rows, &pout)) return NULL;
    if (bands * rows > K || bands < 1 || rows < 1) { PyErr_SetString(PyExc_ValueError, "bands*rows must be <= K"); return NULL; }
    Py_buffer sb, ob;
    if (PyObject_GetBuffer(psig, &sb, PyBUF_SIMPLE) < 0) return NULL;
    Py_ssize_t n = sb.len / 4 / K;
    if (get_out(pout, &ob, n * bands * 8) < 0) { PyBuffer_Release(&sb); return NULL; }
    const uint32_t *sig = (const uint32_t *)sb.buf; uint64_t *out = (uint64_t *)ob.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t b = 0; b < bands; b++)
            out[i * bands + b] = murmur64((const uint8_t *)(sig + i * K + b * rows), (size_t)rows * 4, (uint64_t)b);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ob); PyBuffer_Release(&sb);
    Py_RETURN_NONE;
}


/* ---- take of a string/binary column --------------------------------------------------------- */

/* Arrow's take for a (large) string/binary array without nulls: Arrow's kernel lives in
 * libarrow_compute, whose import costs a small run ~7 ms. offsets: the array's n+1 offsets
 * (int32, or int64 when wide); out_offsets: m+1 of the same width; returns the values as bytes. */
static PyObject *py_take_binary(PyObject *self, PyObject *args) {
    PyObject *poffs, *pdata, *pidx, *pout; int wide;
    if (!PyArg_ParseTuple(args, "OOOpO", &poffs, &pdata, &pidx, &wide, &pout)) return NULL;
    Py_buffer ob, db, ib, rb;
    if (PyObject_GetBuffer(poffs, &ob, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(pdata, &db, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&ob); return NULL; }
    if (PyObject_GetBuffer(pidx, &ib, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&ob); PyBuffer_Release(&db); return NULL; }
    const Py_ssize_t w = wide ? 8 : 4, n = ob.len / w - 1, m = ib.len / 8;
    PyObject *res = NULL;
    if (get_out(pout, &rb, (m + 1) * w) < 0) goto done;
    const int64_t *idx = (const int64_t *)ib.buf;
#define CURATE_OFF(i) (wide ? ((const int64_t *)ob.buf)[i] : (int64_t)((const int32_t *)ob.buf)[i])
    int64_t total = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        if (idx[j] < 0 || idx[j] >= n) {
            PyErr_Format(PyExc_IndexError, "index %lld out of bounds for an array of %zd", (long long)idx[j], n);
            goto release;
        }
        total += CURATE_OFF(idx[j] + 1) - CURATE_OFF(idx[j]);
    }
    if (!wide && total > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "taken values exceed 2 GB"); goto release; }
    if (n >= 0 && (CURATE_OFF(n) > db.len || CURATE_OFF(0) < 0)) { PyErr_SetString(PyExc_ValueError, "offsets past the data"); goto release; }
    res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (res == NULL) goto release;
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(res);
    const uint8_t *src = (const uint8_t *)db.buf;
    int64_t at = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < m; j++) {
        int64_t a = CURATE_OFF(idx[j]), len = CURATE_OFF(idx[j] + 1) - a;
        if (wide) ((int64_t *)rb.buf)[j] = at; else ((int32_t *)rb.buf)[j] = (int32_t)at;
        memcpy(dst + at, src + a, (size_t)len);
        at += len;
    }
    if (wide) ((int64_t *)rb.buf)[m] = at; else ((int32_t *)rb.buf)[m] = (int32_t)at;
    Py_END_ALLOW_THREADS
#undef CURATE_OFF
release:
    PyBuffer_Release(&rb);
done:
    PyBuffer_Release(&ob); PyBuffer_Release(&db); PyBuffer_Release(&ib);
    return res;
}


/* ---- normalisation ------------------------------------------------------------------------ */

/* Text after normalisation, in both modes: separators (simple: punctuation, symbols, spaces and
 * controls; whitespace: spaces and controls only) collapse to one space, none at either end.
 * simple also lower-cases (the header's map, one code point to one, pyarrow's utf8_lower) and
 * turns decimal digits into '0'. Every path below writes a space as soon as a separator follows a
 * kept character and drops one left at the end, which is the same text as waiting for the next
 * kept character: the only state between bytes is "the last character was a separator", so a SIMD
 * block and the scalar loop can take turns anywhere. */

static int uclass(uint32_t cp) {
    int lo = 0, hi = N_UCLASS_RANGES - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (cp < UCLASS_LO[mid]) hi = mid - 1;
        else if (cp > UCLASS_HI[mid]) lo = mid + 1;
        else return UCLASS_K[mid];
    }
    return 0;
}

/* Property index of a code point (see _unicode_tables.h); above UPROP_LIMIT only the class ranges apply. */
static inline int uprop(uint32_t cp) {
    if (cp < UPROP_LIMIT) return UPROP_STAGE2[((uint32_t)UPROP_STAGE1[cp >> UPROP_SHIFT] << UPROP_SHIFT) | (cp & UPROP_MASK)];
    return uclass(cp);
}

/* ASCII byte -> output byte, 0 for a separator; [0] whitespace mode, [1] simple mode. */
static uint8_t ASCII_MAP[2][128];
static void init_ascii(void) {
    for (int c = 0; c < 128; c++) {
        int p = uprop((uint32_t)c), k = UPROP_CLASS[p];
        ASCII_MAP[0][c] = k == 3 ? 0 : (uint8_t)c;
        ASCII_MAP[1][c] = (k == 1 || k == 3) ? 0 : k == 2 ? '0' : (uint8_t)(c + UPROP_DELTA[p]);
    }
}

/* Decode one UTF-8 code point at t[j]; malformed bytes decode as they always have (whitespace mode keeps them). */
static inline uint32_t utf8_at(const uint8_t *t, size_t len, size_t j, size_t *n) {
    uint8_t c = t[j];
    if (c < 0x80) { *n = 1; return c; }
    if ((c >> 5) == 6 && j + 1 < len) { *n = 2; return ((uint32_t)(c & 0x1F) << 6) | (t[j + 1] & 0x3F); }
    if ((c >> 4) == 14 && j + 2 < len) { *n = 3; return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(t[j + 1] & 0x3F) << 6) | (t[j + 2] & 0x3F); }
    if ((c >> 3) == 30 && j + 3 < len) { *n = 4; return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(t[j + 1] & 0x3F) << 12) | ((uint32_t)(t[j + 2] & 0x3F) << 6) | (t[j + 3] & 0x3F); }
    *n = 1; return 0xFFFD;
}

/* One character at t[j], the scalar way; returns its length in bytes. */
static inline size_t norm_char(const uint8_t *t, size_t len, size_t j, uint8_t *out, size_t *w, int *sep, int simple) {
    uint8_t c = t[j];
    if (c < 0x80) {
        uint8_t m = ASCII_MAP[simple][c];
        if (m) { out[(*w)++] = m; *sep = 0; }
        else { if (!*sep) out[(*w)++] = ' '; *sep = 1; }
        return 1;
    }
    size_t n; uint32_t cp = utf8_at(t, len, j, &n);
    int p = cp < 0x80 ? 0 : uprop(cp), k = UPROP_CLASS[p];  /* an overlong form of ASCII: kept, as before */
    if (k == 3 || (simple && k == 1)) { if (!*sep) out[(*w)++] = ' '; *sep = 1; return n; }
    *sep = 0;
    if (simple && k == 2) out[(*w)++] = '0';
    else if (!simple || UPROP_DELTA[p] == 0) {  /* n <= 4: no memcpy call */
        uint8_t *o = out + *w;
        o[0] = c; o[1] = t[j + 1 < len ? j + 1 : j];
        if (n > 2) { o[2] = t[j + 2]; if (n > 3) o[3] = t[j + 3]; }
        *w += n;
    }
    else *w += put_utf8(out + *w, (uint32_t)((int32_t)cp + UPROP_DELTA[p]));
    return n;
}

/* Drop the space a final run of separators wrote (not a ' ' byte inside a malformed UTF-8 sequence). */
static inline size_t trim_end(size_t w, int sep) { return sep && w ? w - 1 : w; }

static size_t norm_scalar(const uint8_t *t, size_t len, uint8_t *out, int simple) {
    size_t j = 0, w = 0; int sep = 1;  /* a virtual separator before the text: no leading space */
    while (j < len) j += norm_char(t, len, j, out, &w, &sep, simple);
    return trim_end(w, sep);
}

/* Output bytes the SIMD paths may write past the end of the text's normal form. */
#define NORM_SLACK 64

#if defined(__x86_64__) && defined(__GNUC__)
/* COMPRESS[m]: the byte indices of the set bits of m, in order: pshufb packs the kept bytes of 8. */
static uint64_t COMPRESS[256];
static void init_compress(void) {
    for (int m = 0; m < 256; m++) {
        uint64_t v = 0; int q = 0;
        for (int b = 0; b < 8; b++) if (m & (1 << b)) v |= (uint64_t)b << (8 * q++);
        COMPRESS[m] = v;
    }
}

/* Store the bytes of m whose bits are set in keep, packed, at o; returns how many. Branch-free:
 * in simple mode ". " makes blocks with a dropped byte too common to predict. */
__attribute__((target("sse4.1,popcnt")))
static inline size_t pack16(__m128i m, unsigned keep, uint8_t *o) {
    unsigned lo = keep & 0xFF, hi = keep >> 8;
    const __m128i idx = _mm_set_epi64x((long long)(COMPRESS[hi] + 0x0808080808080808ULL), (long long)COMPRESS[lo]);
    const __m128i c = _mm_shuffle_epi8(m, idx);
    size_t a = (size_t)__builtin_popcount(lo);
    _mm_storel_epi64((__m128i *)o, c);
    _mm_storel_epi64((__m128i *)(o + a), _mm_unpackhi_epi64(c, c));
    return a + (size_t)__builtin_popcount(hi);
}

/* Per block: bytes before the first non-ASCII one are classified at once (separator mask S, mapped
 * bytes m); a separator is dropped when the byte before it (or the state, for the first) was one.
 * Non-ASCII characters go through norm_char. An all-ASCII block advances by B without waiting for
 * its data (the branch is predicted), so loads of later blocks need not wait for this one's mask.
 * The last partial block is copied to a padded buffer. */
#define NORM_STEP(LIM, PACK)                                                                           \
    {                                                                                                 \
        unsigned lim = (LIM), p = (unsigned)__builtin_ctzll(na | ((uint64_t)1 << lim));                \
        if (p) {                                                                                      \
            uint64_t valid = ((uint64_t)1 << p) - 1;                                                  \
            S &= valid;                                                                               \
            uint64_t keep = ~(S & ((S << 1) | sep)) & valid;                                          \
            w += PACK;                                                                                \
            sep = (S >> (p - 1)) & 1;                                                                 \
            j += p;                                                                                   \
        }                                                                                             \
        if (p < lim) {                                                                                \
            int s = (int)sep;                                                                         \
            do j += norm_char(t, len, j, out, &w, &s, simple); while (j < len && t[j] >= 0x80);        \
            sep = (uint64_t)s;                                                                        \
        }                                                                                             \
    }

#define NORM_BLOCK_LOOP(B, CLASSIFY, PACK)                                                              \
    size_t j = 0, w = 0; uint64_t sep = 1, na, S; uint8_t buf[B];                                     \
    const uint64_t full = ((uint64_t)1 << B) - 1;                                                     \
    while (j + B <= len) {                                                                            \
        const uint8_t *src = t + j;                                                                   \
        CLASSIFY;                                                                                     \
        if (__builtin_expect(na == 0, 1)) {                                                           \
            uint64_t keep = ~(S & ((S << 1) | sep)) & full;                                           \
            w += PACK;                                                                                \
            sep = S >> (B - 1);                                                                       \
            j += B;                                                                                   \
        } else NORM_STEP(B, PACK)                                                                     \
    }                                                                                                 \
    while (j < len) {                                                                                 \
        const uint8_t *src = buf;                                                                     \
        memset(buf, 0, B); memcpy(buf, t + j, len - j);                                               \
        CLASSIFY;                                                                                     \
        NORM_STEP((unsigned)(len - j), PACK)                                                          \
    }                                                                                                 \
    return trim_end(w, (int)sep);

/* Classify 16 (32) bytes: returns them mapped (separators as spaces); *na: non-ASCII mask, *S: separator mask. */
__attribute__((target("sse4.1,popcnt")))
static inline __m128i classify16(const uint8_t *src, int simple, uint64_t *na, uint64_t *S) {
    const __m128i v = _mm_loadu_si128((const __m128i *)src), sp = _mm_set1_epi8(' ');
    *na = (unsigned)_mm_movemask_epi8(v);
    if (simple) {
        const __m128i d0 = _mm_set1_epi8('0'), lv = _mm_or_si128(v, _mm_set1_epi8(0x20));
        const __m128i l = _mm_sub_epi8(lv, _mm_set1_epi8('a')), d = _mm_sub_epi8(v, d0);
        const __m128i letter = _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(25)), l);
        const __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
        *S = ~(unsigned)_mm_movemask_epi8(_mm_or_si128(letter, digit)) & 0xFFFFu;
        return _mm_blendv_epi8(_mm_blendv_epi8(sp, d0, digit), lv, letter);
    }
    const __m128i s = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x21)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F)));
    *S = (unsigned)_mm_movemask_epi8(s);
    return _mm_blendv_epi8(v, sp, s);
}

__attribute__((target("avx2,popcnt")))
static inline __m256i classify32(const uint8_t *src, int simple, uint64_t *na, uint64_t *S) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)src), sp = _mm256_set1_epi8(' ');
    *na = (uint32_t)_mm256_movemask_epi8(v);
    if (simple) {
        const __m256i d0 = _mm256_set1_epi8('0'), lv = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        const __m256i l = _mm256_sub_epi8(lv, _mm256_set1_epi8('a')), d = _mm256_sub_epi8(v, d0);
        const __m256i letter = _mm256_cmpeq_epi8(_mm256_min_epu8(l, _mm256_set1_epi8(25)), l);
        const __m256i digit = _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d);
        *S = ~(uint32_t)_mm256_movemask_epi8(_mm256_or_si256(letter, digit));
        return _mm256_blendv_epi8(_mm256_blendv_epi8(sp, d0, digit), lv, letter);
    }
    const __m256i s = _mm256_or_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x21), v),
                                      _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7F)));
    *S = (uint32_t)_mm256_movemask_epi8(s);
    return _mm256_blendv_epi8(v, sp, s);
}

/* In whitespace mode nearly every block keeps all its bytes: then one store is cheaper. */
__attribute__((target("avx2,popcnt")))
static inline size_t pack32(__m256i m, uint32_t keep, uint8_t *o, int simple) {
    if (!simple && keep == 0xFFFFFFFFu) { _mm256_storeu_si256((__m256i *)o, m); return 32; }
    size_t a = pack16(_mm256_castsi256_si128(m), keep & 0xFFFF, o);
    return a + pack16(_mm256_extracti128_si256(m, 1), keep >> 16, o + a);
}

__attribute__((target("sse4.1,popcnt")))
static size_t norm_sse41(const uint8_t *t, size_t len, uint8_t *out, int simple) {
    __m128i m;
    NORM_BLOCK_LOOP(16, m = classify16(src, simple, &na, &S), pack16(m, (unsigned)keep, out + w))
}

__attribute__((target("avx2,popcnt")))
static size_t norm_avx2(const uint8_t *t, size_t len, uint8_t *out, int simple) {
    __m256i m;
    NORM_BLOCK_LOOP(32, m = classify32(src, simple, &na, &S), pack32(m, (uint32_t)keep, out + w, simple))
}
#undef NORM_BLOCK_LOOP
#undef NORM_STEP

static size_t norm_doc(const uint8_t *t, size_t len, uint8_t *out, int simple, int level) {
    if (level == 2) return norm_avx2(t, len, out, simple);
    if (level == 1) return norm_sse41(t, len, out, simple);
    return norm_scalar(t, len, out, simple);
}
#else
static void init_compress(void) {}
static size_t norm_doc(const uint8_t *t, size_t len, uint8_t *out, int simple, int level) {
    (void)level; return norm_scalar(t, len, out, simple);
}
#endif

/* Output bytes a text of `len` bytes may need: lower case can turn 2 bytes into 3 (U+023A -> U+2C65). */
static inline int64_t norm_room(int64_t len, int simple) { return (simple ? len + len / 2 : len) + NORM_SLACK; }

/* normalize(offsets, data, wide, out_offsets int64[n+1], out_data, simple) -> bytes used
 * out_data needs total + NORM_SLACK bytes (simple: 1.5 * total + NORM_SLACK), total = the input's bytes.
 * simple=1: lower-case (Unicode, pyarrow's map), punctuation and symbols -> space, decimal digits
 * -> '0', whitespace and controls collapsed to one space, no leading or trailing space.
 * simple=0 ("whitespace"): only whitespace and controls collapsed to one space, trimmed. */
static PyObject *py_normalize(PyObject *self, PyObject *args) {
    PyObject *o, *d, *po, *pd; int wide, simple;
    if (!PyArg_ParseTuple(args, "OOpOOp", &o, &d, &wide, &po, &pd, &simple)) return NULL;
    Strings s; Py_buffer ob, db;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    if (get_out(po, &ob, (s.n + 1) * 8) < 0) { release_strings(&s); return NULL; }
    int64_t total = s.n ? off_at(&s, s.n) - off_at(&s, 0) : 0;
    if (get_out(pd, &db, norm_room(total, simple)) < 0) { PyBuffer_Release(&ob); release_strings(&s); return NULL; }
    const uint8_t *base = (const uint8_t *)s.data.buf;
    int64_t *oo = (int64_t *)ob.buf; uint8_t *out = (uint8_t *)db.buf;
    int64_t w = 0;
    int level = simd_level();
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s.n; i++) {
        int64_t lo = off_at(&s, i), hi = off_at(&s, i + 1);
        oo[i] = w;
        w += (int64_t)norm_doc(base + lo, (size_t)(hi - lo), out + w, simple, level);
    }
    oo[s.n] = w;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&db); PyBuffer_Release(&ob); release_strings(&s);
    return PyLong_FromLongLong(w);
}

/* normalize_hash128(offsets, data, wide, out, simple, seed, raw_seed): out[2i], out[2i+1] =
 * MurmurHash3_x64_128 (seed) of the normal form of string i, or of the raw string (raw_seed) when
 * the normal form is empty; the same as hash128 after normalize, without the normalised array. */
static PyObject *py_normalize_hash128(PyObject *self, PyObject *args) {
    PyObject *o, *d, *out; int wide, simple; unsigned long long seed, raw_seed;
    if (!PyArg_ParseTuple(args, "OOpOpKK", &o, &d, &wide, &out, &simple, &seed, &raw_seed)) return NULL;
    Strings s; Py_buffer ob;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0 || get_out(out, &ob, s.n * 16) < 0) { release_strings(&s); return NULL; }
    const uint8_t *base = (const uint8_t *)s.data.buf;
    uint64_t *res = (uint64_t *)ob.buf;
    int level = simd_level(), failed = 0;
    Py_BEGIN_ALLOW_THREADS
    uint8_t *scratch = NULL; int64_t cap = 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        int64_t a = off_at(&s, i), b = off_at(&s, i + 1), need = norm_room(b - a, simple);
        if (need > cap) {
            int64_t ncap = need > 2 * cap ? need : 2 * cap;
            uint8_t *p = (uint8_t *)realloc(scratch, (size_t)ncap);
            if (!p) { failed = 1; break; }
            scratch = p; cap = ncap;
        }
        size_t w = norm_doc(base + a, (size_t)(b - a), scratch, simple, level);
        if (w) murmur128(scratch, w, seed, res + 2 * i);
        else murmur128(base + a, (size_t)(b - a), raw_seed, res + 2 * i);
    }
    free(scratch);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ob); release_strings(&s);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* union_find(a int64[m], b int64[m], parent int64[n], init, flatten): join the components of
 * the edges (a_e, b_e) in `parent` (any writable buffer, e.g. a memory-mapped file), called once
 * per chunk of edges. Each root is the smallest index of its component (union by smaller index,
 * path halving), so the result does not depend on the order of the edges. init: set parent[i] = i
 * first; flatten: at the end point every node straight at its root. */
static PyObject *py_union_find(PyObject *self, PyObject *args) {
    PyObject *pa_, *pb_, *pout; int init, flatten;
    if (!PyArg_ParseTuple(args, "OOOpp", &pa_, &pb_, &pout, &init, &flatten)) return NULL;
    Py_buffer ab, bb, ob;
    if (PyObject_GetBuffer(pa_, &ab, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(pb_, &bb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&ab); return NULL; }
    if (ab.len != bb.len || PyObject_GetBuffer(pout, &ob, PyBUF_WRITABLE) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a and b differ in length");
        PyBuffer_Release(&ab); PyBuffer_Release(&bb); return NULL;
    }
    const int64_t *A = (const int64_t *)ab.buf, *B = (const int64_t *)bb.buf;
    int64_t *p = (int64_t *)ob.buf;
    Py_ssize_t m = ab.len / 8, n = ob.len / 8;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    if (init) for (Py_ssize_t i = 0; i < n; i++) p[i] = i;
    for (Py_ssize_t e = 0; e < m; e++) {
        int64_t x = A[e], y = B[e];
        if (x < 0 || y < 0 || x >= n || y >= n) { bad = 1; break; }
        while (p[x] != x) { p[x] = p[p[x]]; x = p[x]; }
        while (p[y] != y) { p[y] = p[p[y]]; y = p[y]; }
        if (x < y) p[y] = x; else if (y < x) p[x] = y;
    }
    /* parents are smaller than children: one ascending pass reaches every root */
    if (!bad && flatten) for (Py_ssize_t i = 0; i < n; i++) p[i] = p[p[i]];
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&ab); PyBuffer_Release(&bb); PyBuffer_Release(&ob);
    if (bad) { PyErr_SetString(PyExc_ValueError, "edge endpoint out of range"); return NULL; }
    Py_RETURN_NONE;
}

/* ---- audit: near duplicates within a MinHash sample ----------------------------------------- */

/* Stable LSD radix sort of (key, index) by key: ties keep index order, as numpy's stable argsort. */
static void radix_sort_kv(uint64_t *k, int64_t *v, uint64_t *k2, int64_t *v2, size_t n) {
    uint64_t *sk = k, *dk = k2, *tk; int64_t *sv = v, *dv = v2, *tv; size_t cnt[256];
    for (int sh = 0; sh < 64; sh += 8) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(sk[i] >> sh) & 255]++;
        if (cnt[(sk[0] >> sh) & 255] == n) continue;  /* one digit value: the pass would change nothing */
        size_t s = 0;
        for (int d = 0; d < 256; d++) { size_t c = cnt[d]; cnt[d] = s; s += c; }
        for (size_t i = 0; i < n; i++) { size_t q = cnt[(sk[i] >> sh) & 255]++; dk[q] = sk[i]; dv[q] = sv[i]; }
        tk = sk; sk = dk; dk = tk; tv = sv; sv = dv; dv = tv;
    }
    if (sk != k) { memcpy(k, sk, n * 8); memcpy(v, sv, n * 8); }
}

static inline int64_t uf_find(int64_t *p, int64_t x) {
    while (p[x] != x) { p[x] = p[p[x]]; x = p[x]; }
    return x;
}

/* near_in_sample(sig uint32[n*K], K, bk uint64[n*bands], bands, window, threshold, parent int64[n])
 * -> pairs found. The in-sample check of curate.audit.report, band after band: documents with equal
 * band keys, up to `window` apart in the key order (stable), are a candidate pair unless already in
 * one component (as of the band's start); a candidate is accepted when its signatures agree on
 * >= 16 of the first min(32, K) values and on >= threshold * K of all (a pair refused in one band
 * is refused again in the next: no list of refused pairs is needed for the same result).
 * Accepted pairs of a band are joined after the band (parent: roots are smallest indices,
 * flattened at the end); the count returned is the accepted pairs summed over the bands. */
static PyObject *py_near_in_sample(PyObject *self, PyObject *args) {
    PyObject *psig, *pbk, *ppar; Py_ssize_t K, bands, window; double thr;
    if (!PyArg_ParseTuple(args, "OnOnndO", &psig, &K, &pbk, &bands, &window, &thr, &ppar)) return NULL;
    if (K < 1 || bands < 1 || window < 1) { PyErr_SetString(PyExc_ValueError, "K, bands and window must be >= 1"); return NULL; }
    Py_buffer sb, kb, pb;
    if (PyObject_GetBuffer(psig, &sb, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(pbk, &kb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&sb); return NULL; }
    if (PyObject_GetBuffer(ppar, &pb, PyBUF_WRITABLE) < 0) { PyBuffer_Release(&kb); PyBuffer_Release(&sb); return NULL; }
    Py_ssize_t n = pb.len / 8;
    if (sb.len < n * K * 4 || kb.len < n * bands * 8) {
        PyBuffer_Release(&pb); PyBuffer_Release(&kb); PyBuffer_Release(&sb);
        PyErr_SetString(PyExc_ValueError, "near_in_sample: sig or bk smaller than n rows"); return NULL;
    }
    const uint32_t *sig = (const uint32_t *)sb.buf; const uint64_t *bk = (const uint64_t *)kb.buf;
    int64_t *p = (int64_t *)pb.buf;
    int64_t found = 0; int failed = 0;
    Py_ssize_t first = K < 32 ? K : 32;
    Py_BEGIN_ALLOW_THREADS
    size_t N = (size_t)n, ecap = 0, ne = 0;
    uint64_t *key = (uint64_t *)malloc(N * 8 + 8), *key2 = (uint64_t *)malloc(N * 8 + 8);
    int64_t *idx = (int64_t *)malloc(N * 8 + 8), *idx2 = (int64_t *)malloc(N * 8 + 8), *ea = NULL, *eb = NULL;
    uint8_t *fp = (uint8_t *)malloc(N * (size_t)K + 1);  /* the low byte of every value */
    if (!key || !key2 || !idx || !idx2 || !fp) failed = 1;
    for (size_t i = 0; i < N * (size_t)K && !failed; i++) fp[i] = (uint8_t)sig[i];
    for (size_t i = 0; i < N; i++) p[i] = (int64_t)i;
    for (Py_ssize_t j = 0; j < bands && !failed && N > 1; j++) {
        for (size_t i = 0; i < N; i++) { key[i] = bk[i * (size_t)bands + (size_t)j]; idx[i] = (int64_t)i; }
        radix_sort_kv(key, idx, key2, idx2, N);
        ne = 0;
        for (size_t g = 0; g < N && !failed;) {
            size_t h = g + 1;
            while (h < N && key[h] == key[g]) h++;
            for (size_t x = g; x + 1 < h && !failed; x++) {
                for (size_t y = x + 1; y < h && y <= x + (size_t)window; y++) {
                    int64_t a = idx[x], b = idx[y];
                    if (uf_find(p, a) == uf_find(p, b)) continue;
                    /* the low bytes agree wherever the values do, so a pair refused on them
                     * (most refusals: near misses come back band after band) is refused on a
                     * quarter of the memory the signatures take */
                    const uint8_t *fa = fp + (size_t)a * K, *fb = fp + (size_t)b * K;
                    Py_ssize_t close = 0, q = 0;
                    for (; q < first; q++) close += fa[q] == fb[q];
                    if (close < 16) continue;
                    for (; q < K; q++) close += fa[q] == fb[q];
                    if ((double)close < thr * (double)K) continue;
                    const uint32_t *sa = sig + (size_t)a * K, *sbb = sig + (size_t)b * K;
                    Py_ssize_t same = 0, k = 0;
                    for (; k < first; k++) same += sa[k] == sbb[k];
                    if (same < 16) continue;
                    for (; k < K; k++) same += sa[k] == sbb[k];
                    if ((double)same < thr * (double)K) continue;
                    if (ne == ecap) {
                        size_t nc = ecap ? 2 * ecap : 4096;
                        int64_t *na = (int64_t *)realloc(ea, nc * 8), *nb = na ? (int64_t *)realloc(eb, nc * 8) : NULL;
                        if (na) ea = na;
                        if (!na || !nb) { failed = 1; break; }
                        eb = nb; ecap = nc;
                    }
                    ea[ne] = a; eb[ne] = b; ne++;
                }
            }
            g = h;
        }
        found += (int64_t)ne;
        for (size_t e = 0; e < ne; e++) {  /* as union_find: the smaller root wins */
            int64_t x = uf_find(p, ea[e]), y = uf_find(p, eb[e]);
            if (x < y) p[y] = x; else if (y < x) p[x] = y;
        }
        for (size_t i = 0; i < N; i++) p[i] = p[p[i]];  /* flat: the next band's finds take one step */
    }
    for (size_t i = 0; i < N; i++) p[i] = p[p[i]];
    free(key); free(key2); free(idx); free(idx2); free(ea); free(eb); free(fp);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&pb); PyBuffer_Release(&kb); PyBuffer_Release(&sb);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromLongLong(found);
}

/* shingle_hll(offsets, data, wide, char_mode, ngram, seed, p, reg int8[2^p]) -> distinct shingles:
 * the HyperLogLog registers (datasketch's rule: register = low p bits, rank = 32 - p - bit_length of
 * the rest + 1) of the 32-bit shingle hashes minhash() uses, and the number of distinct shingles
 * per string summed (shingle_sets' sizes; a small hash set per string instead of a sort). */
static PyObject *py_shingle_hll(PyObject *self, PyObject *args) {
    PyObject *o, *d, *preg; int wide, char_mode, ngram, p; unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOppiKiO", &o, &d, &wide, &char_mode, &ngram, &seed, &p, &preg)) return NULL;
    if (ngram < 1 || p < 4 || p > 16) { PyErr_SetString(PyExc_ValueError, "ngram >= 1 and 4 <= p <= 16"); return NULL; }
    Strings s; Py_buffer rb;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0 || get_out(preg, &rb, (Py_ssize_t)1 << p) < 0) { release_strings(&s); return NULL; }
    int8_t *reg = (int8_t *)rb.buf;
    const uint8_t *base = (const uint8_t *)s.data.buf;
    int64_t total = 0; int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t *starts = NULL; size_t cap = 0;
    Distinct q = {NULL, NULL, 0, 0, p, reg};
    for (Py_ssize_t i = 0; i < s.n && !failed; i++) {
        int64_t lo = off_at(&s, i), hi = off_at(&s, i + 1);
        const uint8_t *t = base + lo; size_t len = (size_t)(hi - lo);
        if (!len) continue;
        if (cap < len + 1) {
            int64_t *q = (int64_t *)realloc(starts, (len + 1) * sizeof(int64_t));
            if (!q) { failed = 1; break; }
            starts = q; cap = len + 1;
        }
        size_t nu = unit_starts(t, len, char_mode, starts), m = shingle_count(nu, ngram);
        if (!m) continue;
        if (distinct_next(&q, m) < 0) { failed = 1; break; }
        for (size_t u = 0; u < m; u++)
            total += distinct_add(&q, (uint32_t)shingle_hash(t, len, starts, nu, u, ngram, char_mode, seed));
    }
    free(starts); free(q.tv); free(q.ts);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&rb); release_strings(&s);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromLongLong(total);
}

/* minhash_hll(offsets, data, wide, ngram, a, b, out_sig, out_count, seed, p, reg int8[2^p]) ->
 * distinct shingles: minhash() (word mode) and shingle_hll() of the same strings in one pass, each
 * 5-gram hashed once for both (the audit's sampled rows when they are also its MinHash sample). */
static PyObject *py_minhash_hll(PyObject *self, PyObject *args) {
    PyObject *o, *d, *pa_, *pb_, *psig, *pcnt, *preg; int wide, ngram, p; unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOpiOOOOKiO", &o, &d, &wide, &ngram, &pa_, &pb_, &psig, &pcnt, &seed, &p, &preg)) return NULL;
    if (ngram < 1 || p < 4 || p > 16) { PyErr_SetString(PyExc_ValueError, "ngram >= 1 and 4 <= p <= 16"); return NULL; }
    Strings s; Py_buffer ab, bb, sb, cb, rb;
    if (get_strings(o, d, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    if (PyObject_GetBuffer(pa_, &ab, PyBUF_SIMPLE) < 0) { release_strings(&s); return NULL; }
    if (PyObject_GetBuffer(pb_, &bb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&ab); release_strings(&s); return NULL; }
    Py_ssize_t K = ab.len / 8;
    int got = 0;
    if (bb.len / 8 != K || K < 1) PyErr_SetString(PyExc_ValueError, "a and b must be uint64 arrays of the same length");
    else if (get_out(psig, &sb, s.n * K * 4) == 0) {
        got = 1;
        if (get_out(pcnt, &cb, s.n * 8) == 0) {
            got = 2;
            if (get_out(preg, &rb, (Py_ssize_t)1 << p) == 0) got = 3;
        }
    }
    if (got < 3) {
        if (got >= 2) PyBuffer_Release(&cb);
        if (got >= 1) PyBuffer_Release(&sb);
        PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s); return NULL;
    }
    const uint64_t *A = (const uint64_t *)ab.buf, *B = (const uint64_t *)bb.buf;
    uint32_t *sig = (uint32_t *)sb.buf;
    int64_t *cnt = (int64_t *)cb.buf, total;
    Distinct q = {NULL, NULL, 0, 0, p, (int8_t *)rb.buf};
    Py_BEGIN_ALLOW_THREADS
    total = minhash_strings(&s, A, B, K, sig, cnt, 0, ngram, seed, &q);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&rb); PyBuffer_Release(&cb); PyBuffer_Release(&sb);
    PyBuffer_Release(&ab); PyBuffer_Release(&bb); release_strings(&s);
    if (total < 0) return PyErr_NoMemory();
    return PyLong_FromLongLong(total);
}

static PyMethodDef methods[] = {
    {"normalize", py_normalize, METH_VARARGS, "Simple or whitespace normalisation of each string (see source)."},
    {"union_find", py_union_find, METH_VARARGS, "Connected components: root = smallest node index."},
    {"hash128", py_hash128, METH_VARARGS, "128-bit MurmurHash3 of each string of an Arrow string array."},
    {"normalize_hash128", py_normalize_hash128, METH_VARARGS, "128-bit MurmurHash3 of each string's normal form."},
    {"minhash", py_minhash, METH_VARARGS, "MinHash signatures of each string's shingles."},
    {"band_keys", py_band_keys, METH_VARARGS, "LSH band keys of MinHash signatures."},
    {"take_binary", py_take_binary, METH_VARARGS, "Arrow's take for a string/binary array without nulls."},
    {"shingle_sets", py_shingle_sets, METH_VARARGS, "Sorted distinct shingle hashes of every string, concatenated."},
    {"jaccard_pairs", py_jaccard_pairs, METH_VARARGS, "Exact Jaccard of pairs of sorted sets."},
    {"near_in_sample", py_near_in_sample, METH_VARARGS, "Audit: near-duplicate components within a MinHash sample."},
    {"shingle_hll", py_shingle_hll, METH_VARARGS, "Audit: HyperLogLog registers and distinct counts of shingles."},
    {"minhash_hll", py_minhash_hll, METH_VARARGS, "Audit: minhash() and shingle_hll() in one pass (word shingles)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "curate's compiled kernels.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    init_ascii();
    init_compress();
    return PyModule_Create(&module);
}
