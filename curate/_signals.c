/* Heuristic quality signals (Gopher quality, Gopher repetition, C4, FineWeb) over an Arrow string array,
 * computed as datatrove 0.10.1's filters compute them, with its English word splitter (spaCy's blank "en"
 * tokenizer: whitespace, special cases, prefix/suffix/infix rules) and C4's sentence counter (spaCy's
 * sentencizer) reimplemented here from the tables in _signals_tables.h. Lengths are in code points, as
 * Python's len(). One pass per document; no Python objects per document. */
#include "_strings.h"
#include "_signals_tables.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    G_N_WORDS, G_MEAN_LEN, G_HASH, G_ELLIPSIS, G_BULLET_LINES, G_ELLIPSIS_LINES, G_ALPHA, G_STOP,
    R_PARA, R_PARA_CHAR, R_LINE, R_LINE_CHAR, R_TOP2, R_TOP3, R_TOP4, R_DUP5, R_DUP6, R_DUP7, R_DUP8, R_DUP9, R_DUP10,
    C_LOREM, C_CURLY, C_SENTENCES, C_KEPT,
    F_PUNCT, F_SHORT, F_DUP, F_LIST,
    NCOLS
};
#define SET_GOPHER 1
#define SET_REP 2
#define SET_C4 4
#define SET_FINEWEB 8

static inline uint32_t fl(uint32_t c) {
    if (c >= 0x110000) return 0;
    return SIG_FLAGS[((uint32_t)SIG_INDEX[c >> SIG_SHIFT] << SIG_SHIFT) | (c & ((1u << SIG_SHIFT) - 1))];
}

/* ---- growable buffers ---------------------------------------------------------------------------- */
typedef struct { void *p; size_t cap; } Buf;
static int grow(Buf *b, size_t bytes) {
    if (b->cap >= bytes) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < bytes) cap *= 2;
    void *p = realloc(b->p, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->p = p; b->cap = cap;
    return 0;
}

/* ---- hashing: polynomial mod 2^61-1 over code points ------------------------------------------------ */
#define MOD61 ((1ULL << 61) - 1)
#define BASE61 1000003ULL
static inline uint64_t mulmod(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    uint64_t lo = (uint64_t)(r & MOD61), hi = (uint64_t)(r >> 61);
    uint64_t s = lo + hi;
    return s >= MOD61 ? s - MOD61 : s;
}
static inline uint64_t addmod(uint64_t a, uint64_t b) { uint64_t s = a + b; return s >= MOD61 ? s - MOD61 : s; }
static uint64_t hash_cps(const uint32_t *c, size_t n) {
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = addmod(mulmod(h, BASE61), (uint64_t)c[i] + 1);
    return h;
}
static inline uint64_t key_of(uint64_t h, size_t len) {
    uint64_t k = h ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
    return k ? k : 1;
}

/* Open-addressing set/counter of 64-bit keys (a key stands for a string: collisions ~ n^2 / 2^61). */
typedef struct { uint64_t key; int64_t count, first; } Slot;
typedef struct { Buf b; size_t mask; } Table;
static int table_reset(Table *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    if (grow(&t->b, cap * sizeof(Slot)) < 0) return -1;
    memset(t->b.p, 0, cap * sizeof(Slot));
    t->mask = cap - 1;
    return 0;
}
/* Returns the slot of key, inserting it (count 0) if absent. */
static inline Slot *table_get(Table *t, uint64_t key, int64_t idx) {
    Slot *s = (Slot *)t->b.p;
    size_t i = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & t->mask;
    while (s[i].key && s[i].key != key) i = (i + 1) & t->mask;
    if (!s[i].key) { s[i].key = key; s[i].count = 0; s[i].first = idx; }
    return &s[i];
}

/* ---- spaCy special cases ------------------------------------------------------------------------- */
static uint32_t *sp_cps;      /* all keys' code points */
static size_t *sp_off;        /* key i: sp_cps[sp_off[i] .. sp_off[i+1]) */
static Slot *sp_table;        /* key -> index (count field) */
static size_t sp_mask, sp_maxlen;
/* A quick pre-check before hashing: (length, first, last code point) of every key, in a bit set. */
static uint64_t sp_bloom[1024];
static inline uint32_t bloom_bit(const uint32_t *c, size_t n) {
    uint64_t h = ((uint64_t)n * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)c[0] * 0xC2B2AE3D27D4EB4FULL) ^ ((uint64_t)c[n - 1] * 0x165667B19E3779F9ULL);
    return (uint32_t)(h >> 48);
}

static size_t decode_utf8(const uint8_t *s, size_t n, uint32_t *out) {
    size_t i = 0, k = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t c;
        if (b < 0x80) { c = b; i += 1; }
        else if (b < 0xE0 && i + 1 < n) { c = ((uint32_t)(b & 0x1F) << 6) | (s[i + 1] & 0x3F); i += 2; }
        else if (b < 0xF0 && i + 2 < n) { c = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F); i += 3; }
        else if (i + 3 < n) {
            c = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) | ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
            i += 4;
        } else { c = 0xFFFD; i += 1; }
        out[k++] = c;
    }
    return k;
}

static int specials_init(void) {
    size_t total = 0;
    for (int i = 0; i < N_SPECIALS; i++) total += strlen(SPECIAL_KEYS[i]);
    sp_cps = malloc((total + 1) * sizeof(uint32_t));
    sp_off = malloc((N_SPECIALS + 1) * sizeof(size_t));
    size_t cap = 1;
    while (cap < 4 * N_SPECIALS) cap *= 2;
    sp_table = calloc(cap, sizeof(Slot));
    if (!sp_cps || !sp_off || !sp_table) { PyErr_NoMemory(); return -1; }
    sp_mask = cap - 1;
    size_t k = 0;
    for (int i = 0; i < N_SPECIALS; i++) {
        sp_off[i] = k;
        size_t m = decode_utf8((const uint8_t *)SPECIAL_KEYS[i], strlen(SPECIAL_KEYS[i]), sp_cps + k);
        if (m > sp_maxlen) sp_maxlen = m;
        uint32_t bb = bloom_bit(sp_cps + k, m);
        sp_bloom[bb >> 6] |= 1ULL << (bb & 63);
        uint64_t key = key_of(hash_cps(sp_cps + k, m), m);
        size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & sp_mask;
        while (sp_table[j].key) j = (j + 1) & sp_mask;
        sp_table[j].key = key; sp_table[j].count = i;
        k += m;
    }
    sp_off[N_SPECIALS] = k;
    return 0;
}

/* The special case equal to c[0..n), or -1. */
static int special(const uint32_t *c, size_t n) {
    if (n == 0 || n > sp_maxlen) return -1;
    uint32_t bb = bloom_bit(c, n);
    if (!(sp_bloom[bb >> 6] & (1ULL << (bb & 63)))) return -1;
    uint64_t key = key_of(hash_cps(c, n), n);
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & sp_mask;
    while (sp_table[j].key) {
        if (sp_table[j].key == key) {
            int i = (int)sp_table[j].count;
            if (sp_off[i + 1] - sp_off[i] == n && !memcmp(sp_cps + sp_off[i], c, n * sizeof(uint32_t))) return i;
        }
        j = (j + 1) & sp_mask;
    }
    return -1;
}

/* Special cases matched across tokens (spaCy's _special_matcher): patterns chained by first token. */
static Slot *pt_table;
static size_t pt_mask;
static int pt_next[N_PATTERNS];

static int patterns_init(void) {
    size_t cap = 1;
    while (cap < 4 * N_PATTERNS) cap *= 2;
    pt_table = calloc(cap, sizeof(Slot));
    if (!pt_table) { PyErr_NoMemory(); return -1; }
    pt_mask = cap - 1;
    for (int p = N_PATTERNS - 1; p >= 0; p--) {
        int k = PATTERN_KEY[p];
        size_t len = PATTERN_TOKS[PATTERN_START[p] + 1];
        uint64_t key = key_of(hash_cps(sp_cps + sp_off[k], len), len);
        size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & pt_mask;
        while (pt_table[j].key && pt_table[j].key != key) j = (j + 1) & pt_mask;
        pt_next[p] = pt_table[j].key ? (int)pt_table[j].count : -1;
        pt_table[j].key = key;
        pt_table[j].count = p;
    }
    return 0;
}

/* suffixes after a digit (currencies, units), as code points */
static uint32_t ad_cps[N_AFTER_DIGIT][8];
static size_t ad_len[N_AFTER_DIGIT];
static void after_digit_init(void) {
    for (int i = 0; i < N_AFTER_DIGIT; i++) {
        uint32_t tmp[64];
        size_t m = decode_utf8((const uint8_t *)AFTER_DIGIT[i], strlen(AFTER_DIGIT[i]), tmp);
        if (m > 8) m = 8;
        memcpy(ad_cps[i], tmp, m * sizeof(uint32_t));
        ad_len[i] = m;
    }
}

/* ---- the tokenizer ------------------------------------------------------------------------------- */
typedef struct { int64_t start, len; int ws, gap; } Tok; /* gap: a spaCy whitespace token precedes it */
typedef struct { Buf b; size_t n; } Toks;

static inline int push_tok(Toks *t, int64_t start, int64_t len, int ws) {
    if (grow(&t->b, (t->n + 1) * sizeof(Tok)) < 0) return -1;
    Tok *p = (Tok *)t->b.p;
    p[t->n].start = start; p[t->n].len = len; p[t->n].ws = ws; p[t->n].gap = 0;
    t->n++;
    return 0;
}

static inline int is_digit09(uint32_t c) { return c >= '0' && c <= '9'; }

static size_t find_prefix(const uint32_t *c, size_t n) {
    if (n == 0) return 0;
    uint32_t a = c[0];
    if (a == '+') return (n > 1 && is_digit09(c[1])) ? 0 : 1;
    if (a == '.') {
        size_t k = 0;
        while (k < n && c[k] == '.') k++;
        return k >= 2 ? k : 0;
    }
    if (fl(a) & F_PREFIX) return 1;
    if (n >= 3 && a == 'U' && c[1] == 'S' && c[2] == '$') return 3;
    if (n >= 2 && (a == 'C' || a == 'A') && c[1] == '$') return 2;
    return 0;
}

/* Longest match anchored at the end = the leftmost-starting one (regex search of "...$"). */
static size_t find_suffix(const uint32_t *c, size_t n) {
    if (n == 0) return 0;
    size_t best = 0;
    uint32_t z = c[n - 1];
    if (fl(z) & F_SUFFIX) best = 1;
    if (n >= 2 && z == 0x2026 && c[n - 2] == 0x2026) best = 2;
    if (z == '.') {
        size_t k = 0;
        while (k < n && c[n - 1 - k] == '.') k++;
        if (k >= 2 && k > best) best = k;
    }
    if (n >= 2 && (z == 's' || z == 'S') && (c[n - 2] == '\'' || c[n - 2] == 0x2019) && best < 2) best = 2;
    if (best < 1 && n >= 2) {
        uint32_t y = c[n - 2];
        if (z == '+' && is_digit09(y)) best = 1;
        if (z == '.') {
            if (fl(y) & F_SDOT_LB) best = 1;
            else if (n >= 3 && (fl(y) & F_UPPER) && (fl(c[n - 3]) & F_UPPER)) best = 1;
            else if (n >= 3 && c[n - 3] == 0xB0 && (y == 'F' || y == 'f' || y == 'C' || y == 'c' || y == 'K' || y == 'k')) best = 1;
        }
    }
    /* a currency or unit right after a digit: units hold no digit, so only the tail after the
     * last digit can be one (and it must be longer than what matched already) */
    size_t d = n;
    while (d > 0 && n - d <= 8 && !is_digit09(c[d - 1])) d--; /* bounded: stripping stays linear */
    if (d > 0 && is_digit09(c[d - 1]) && n - d > best && n - d <= 8) {
        size_t m = n - d;
        for (int i = 0; i < N_AFTER_DIGIT; i++)
            if (ad_len[i] == m && !memcmp(c + d, ad_cps[i], m * sizeof(uint32_t))) { best = m; break; }
    }
    return best;
}

static inline int alpha(uint32_t c) { return (fl(c) & F_ALPHA) != 0; }

/* One infix match at i (start of the remaining string is s0), its length or 0. */
static size_t infix_at(const uint32_t *c, size_t s0, size_t i, size_t n) {
    uint32_t a = c[i];
    uint32_t prev = i > s0 ? c[i - 1] : 0, next = i + 1 < n ? c[i + 1] : 0;
    int has_prev = i > s0, has_next = i + 1 < n;
    if (a == '.' && has_next && next == '.') {
        size_t k = i;
        while (k < n && c[k] == '.') k++;
        return k - i;
    }
    if (a == 0x2026) return 1;
    if (fl(a) & F_ICON) return 1;
    if ((a == '+' || a == '-' || a == '*' || a == '^') && has_prev && is_digit09(prev) && has_next && (is_digit09(next) || next == '-'))
        return 1;
    if (a == '.' && has_prev && has_next && (fl(prev) & (F_LOWER | F_QUOTE)) && (fl(next) & (F_UPPER | F_QUOTE))) return 1;
    if (a == ',' && has_prev && has_next && alpha(prev) && alpha(next)) return 1;
    if (has_prev && (alpha(prev) || is_digit09(prev))) {
        /* hyphens, in spaCy's order: - – — -- --- —— ~ */
        if ((a == '-' || a == 0x2013 || a == 0x2014) && has_next && alpha(next)) return 1;
        if (a == '-' && i + 2 < n && c[i + 1] == '-' && alpha(c[i + 2])) return 2;
        if (a == '-' && i + 3 < n && c[i + 1] == '-' && c[i + 2] == '-' && alpha(c[i + 3])) return 3;
        if (a == 0x2014 && i + 2 < n && c[i + 1] == 0x2014 && alpha(c[i + 2])) return 2;
        if (a == '~' && has_next && alpha(next)) return 1;
        if ((a == ':' || a == '<' || a == '>' || a == '=' || a == '/') && has_next && alpha(next)) return 1;
    }
    return 0;
}

/* spaCy's URL_MATCH from c[i]: host (labels, a lower-case TLD), optional :port, optional [/?#] rest.
 * The IP address branch is left out. */
static int url_host(const uint32_t *c, size_t i, size_t n) {
    size_t host = i, end = i;
    while (end < n && c[end] != ':' && c[end] != '/' && c[end] != '?' && c[end] != '#') end++;
    size_t last_dot = 0, dots = 0;
    for (size_t k = host; k < end; k++)
        if (c[k] == '.') { last_dot = k; dots++; }
    if (!dots) return 0;
    size_t tld = end - last_dot - 1;
    if (tld < 2 || tld > 63) return 0;
    for (size_t k = last_dot + 1; k < end; k++)
        if (!(fl(c[k]) & F_LOWER)) return 0;
    size_t ls = host;
    for (size_t k = host; k <= last_dot; k++) {
        if (c[k] != '.') continue;
        size_t len = k - ls;
        if (len < 1 || len > 64) return 0;
        if (!(fl(c[ls]) & F_URL_CH) || !(fl(c[k - 1]) & F_URL_CH)) return 0;
        for (size_t j = ls; j < k; j++)
            if (!(fl(c[j]) & F_URL_CH) && c[j] != '_' && c[j] != '-') return 0;
        ls = k + 1;
    }
    i = end;
    if (i < n && c[i] == ':') {
        size_t d = 0;
        i++;
        while (i < n && is_digit09(c[i])) { i++; d++; }
        if (d < 2 || d > 5) return 0;
    }
    if (i == n) return 1;
    return c[i] == '/' || c[i] == '?' || c[i] == '#';
}

/* spaCy's URL_MATCH: optional scheme://, optional user@ (tried from the last '@', as the regex
 * backtracks), then url_host. */
static int url_from(const uint32_t *c, size_t i, size_t n) {
    for (size_t k = n; k-- > i + 1;)
        if (c[k] == '@' && url_host(c, k + 1, n)) return 1;
    return url_host(c, i, n);
}

static int url_match(const uint32_t *c, size_t n) {
    for (size_t k = 0; k + 2 < n; k++) {
        if (c[k] == ':' && c[k + 1] == '/' && c[k + 2] == '/') {
            int ok = k >= 2;
            for (size_t j = 0; j < k && ok; j++) {
                uint32_t x = c[j];
                ok = x == '+' || x == '-' || x == '.' || x == '_' || (fl(x) & F_ALPHA) || is_digit09(x);
            }
            if (ok && url_from(c, k + 3, n)) return 1;
            break;
        }
    }
    return url_from(c, 0, n); /* no scheme: "user@" may then be any run of non-spaces */
}

static int emit_special(Toks *t, int sp, int64_t base) {
    const uint8_t *p = &SPECIAL_TOKS[SPECIAL_START[sp]];
    int64_t at = base;
    for (int k = 0; k < p[0]; k++) {
        if (push_tok(t, at, p[1 + k], 0) < 0) return -1;
        at += p[1 + k];
    }
    return 0;
}

/* Tokens of one whitespace-free span c[s..e) (offsets relative to c). Affixes go on `aff` as
 * (start, len, is_suffix): prefixes come out in order, suffixes in reverse. */
static int tokenize_span(const uint32_t *c, int64_t s, int64_t e, Toks *t, Buf *aff) {
    int sp = special(c + s, (size_t)(e - s));
    if (sp >= 0) return emit_special(t, sp, s);
    size_t na = 0, last = 0;
    int64_t *a = NULL;
#define PUSH(st, ln, sf) do { if (grow(aff, (na + 1) * 3 * sizeof(int64_t)) < 0) return -1; a = (int64_t *)aff->p; \
        a[3 * na] = (st); a[3 * na + 1] = (ln); a[3 * na + 2] = (sf); na++; } while (0)
    while (e > s && (size_t)(e - s) != last) {
        if (special(c + s, (size_t)(e - s)) >= 0) break;
        last = (size_t)(e - s);
        size_t pl = find_prefix(c + s, (size_t)(e - s));
        if (pl && (size_t)(e - s) > pl && special(c + s + pl, (size_t)(e - s) - pl) >= 0) {
            PUSH(s, (int64_t)pl, 0);
            s += (int64_t)pl;
            break;
        }
        size_t sl = find_suffix(c + s + pl, (size_t)(e - s) - pl);
        if (sl && (size_t)(e - s) > sl && special(c + s, (size_t)(e - s) - sl) >= 0) {
            PUSH(e - (int64_t)sl, (int64_t)sl, 1);
            e -= (int64_t)sl;
            break;
        }
        if (pl && sl && pl + sl <= (size_t)(e - s)) {
            PUSH(s, (int64_t)pl, 0);
            PUSH(e - (int64_t)sl, (int64_t)sl, 1);
            s += (int64_t)pl; e -= (int64_t)sl;
        } else if (pl) {
            PUSH(s, (int64_t)pl, 0);
            s += (int64_t)pl;
        } else if (sl) {
            PUSH(e - (int64_t)sl, (int64_t)sl, 1);
            e -= (int64_t)sl;
        }
        if (special(c + s, (size_t)(e - s)) >= 0) break;
    }
#undef PUSH
    a = (int64_t *)aff->p;
    for (size_t k = 0; k < na; k++)
        if (!a[3 * k + 2] && push_tok(t, a[3 * k], a[3 * k + 1], 0) < 0) return -1;
    if (e > s) {
        sp = special(c + s, (size_t)(e - s));
        if (sp >= 0) {
            if (emit_special(t, sp, s) < 0) return -1;
        } else if (url_match(c + s, (size_t)(e - s))) {
            if (push_tok(t, s, e - s, 0) < 0) return -1;
        } else {
            int64_t start = s, i = s;
            while (i < e) {
                size_t m = infix_at(c, (size_t)s, (size_t)i, (size_t)e);
                if (!m) { i++; continue; }
                if (i != s) {
                    if (i != start && push_tok(t, start, i - start, 0) < 0) return -1;
                    if (push_tok(t, i, (int64_t)m, 0) < 0) return -1;
                    start = i + (int64_t)m;
                }
                i += (int64_t)m;
            }
            if (start < e && push_tok(t, start, e - start, 0) < 0) return -1;
        }
    }
    for (size_t k = na; k-- > 0;)
        if (a[3 * k + 2] && push_tok(t, a[3 * k], a[3 * k + 1], 0) < 0) return -1;
    return 0;
}

typedef struct { int64_t start, end; int key; } Match;

static int match_cmp(const void *a, const void *b) {
    const Match *x = a, *y = b;
    int64_t lx = x->end - x->start, ly = y->end - y->start;
    if (lx != ly) return lx > ly ? -1 : 1; /* longest first */
    return x->start < y->start ? -1 : (x->start > y->start); /* then leftmost */
}
static int start_cmp(const void *a, const void *b) {
    const Match *x = a, *y = b;
    return x->start < y->start ? -1 : (x->start > y->start);
}

/* spaCy's _apply_special_cases: runs of tokens spelling a special case (not split by whitespace)
 * become that special case's tokens; overlapping matches resolved longest first. */
static int apply_specials(const uint32_t *c, Toks *t, Buf *mb, Buf *seen, Toks *tmp) {
    Tok *p = (Tok *)t->b.p;
    size_t n = t->n, nm = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].ws || (size_t)p[i].len > sp_maxlen) continue;
        uint64_t key = key_of(hash_cps(c + p[i].start, (size_t)p[i].len), (size_t)p[i].len);
        size_t j = (size_t)(key * 0x9E3779B97F4A7C15ULL >> 7) & pt_mask;
        while (pt_table[j].key && pt_table[j].key != key) j = (j + 1) & pt_mask;
        if (!pt_table[j].key) continue;
        for (int q = (int)pt_table[j].count; q >= 0; q = pt_next[q]) {
            const uint8_t *pl = &PATTERN_TOKS[PATTERN_START[q]];
            size_t m = pl[0];
            if (i + m > n) continue;
            const uint32_t *kc = sp_cps + sp_off[PATTERN_KEY[q]];
            int ok = 1;
            for (size_t r = 0; r < m && ok; r++) {
                const Tok *x = &p[i + r];
                if (x->ws || x->len != pl[1 + r] || (r && x->gap) || memcmp(c + x->start, kc, (size_t)pl[1 + r] * sizeof(uint32_t)))
                    ok = 0;
                kc += pl[1 + r];
            }
            if (!ok) continue;
            if (grow(mb, (nm + 1) * sizeof(Match)) < 0) return -1;
            Match *mm = (Match *)mb->p;
            mm[nm].start = (int64_t)i; mm[nm].end = (int64_t)(i + m); mm[nm].key = PATTERN_KEY[q];
            nm++;
        }
    }
    if (!nm) return 0;
    Match *mm = (Match *)mb->p;
    qsort(mm, nm, sizeof(Match), match_cmp);
    if (grow(seen, n) < 0) return -1;
    uint8_t *sn = (uint8_t *)seen->p;
    memset(sn, 0, n);
    size_t nk = 0;
    for (size_t k = 0; k < nm; k++) {
        Match x = mm[k];
        int keep = !sn[x.start] && !sn[x.end - 1];
        for (int64_t q = x.start; q < x.end; q++) sn[q] = 1;
        if (keep) mm[nk++] = x;
    }
    qsort(mm, nk, sizeof(Match), start_cmp);
    tmp->n = 0;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (k < nk && (size_t)mm[k].start == i) {
            size_t e = (size_t)mm[k].end;
            int contiguous = 1;
            for (size_t q = i + 1; q < e; q++)
                if (p[q].start != p[q - 1].start + p[q - 1].len) contiguous = 0;
            if (contiguous) {
                int64_t g = p[i].gap;
                size_t before = tmp->n;
                if (emit_special(tmp, mm[k].key, p[i].start) < 0) return -1;
                ((Tok *)tmp->b.p)[before].gap = (int)g;
            } else {
                for (size_t q = i; q < e; q++) {
                    if (push_tok(tmp, p[q].start, p[q].len, p[q].ws) < 0) return -1;
                    ((Tok *)tmp->b.p)[tmp->n - 1].gap = p[q].gap;
                }
            }
            i = e;
            k++;
            continue;
        }
        if (push_tok(tmp, p[i].start, p[i].len, p[i].ws) < 0) return -1;
        ((Tok *)tmp->b.p)[tmp->n - 1].gap = p[i].gap;
        i++;
    }
    /* swap buffers */
    Buf b = t->b; t->b = tmp->b; tmp->b = b;
    size_t nn = tmp->n; tmp->n = t->n; t->n = nn;
    return 0;
}

typedef struct { Buf aff, matches, seen; Toks tmp; } TokWork;

/* All tokens of c[0..n). with_ws: also spaCy's whitespace tokens (a run other than one ' '). */
static int tokenize(const uint32_t *c, size_t n, Toks *t, TokWork *tw, int with_ws) {
    t->n = 0;
    size_t i = 0;
    int gap = 0;
    while (i < n) {
        if (fl(c[i]) & F_SPACE) {
            size_t j = i;
            while (j < n && (fl(c[j]) & F_SPACE)) j++;
            size_t a = (c[i] == ' ' && i > 0) ? i + 1 : i;
            if (a < j) {
                if (with_ws) { if (push_tok(t, (int64_t)a, (int64_t)(j - a), 1) < 0) return -1; }
                else gap = 1;
            }
            i = j;
            continue;
        }
        size_t j = i, before = t->n;
        while (j < n && !(fl(c[j]) & F_SPACE)) j++;
        if (tokenize_span(c, (int64_t)i, (int64_t)j, t, &tw->aff) < 0) return -1;
        if (gap && t->n > before) ((Tok *)t->b.p)[before].gap = 1;
        gap = 0;
        i = j;
    }
    return apply_specials(c, t, &tw->matches, &tw->seen, &tw->tmp);
}

/* spaCy's sentencizer: sentences of a line (datatrove counts at least one). */
static int64_t sentences(const uint32_t *c, const Toks *t) {
    const Tok *p = (const Tok *)t->b.p;
    int64_t count = t->n ? 1 : 0;
    int seen = 0;
    for (size_t i = 0; i < t->n; i++) {
        int in_punct = !p[i].ws && p[i].len == 1 && (fl(c[p[i].start]) & F_SENT_PUNCT);
        int is_punct = !p[i].ws;
        for (int64_t k = 0; is_punct && k < p[i].len; k++)
            if (!(fl(c[p[i].start + k]) & F_CAT_P)) is_punct = 0;
        if (seen && !is_punct && !in_punct) { count++; seen = 0; }
        else if (in_punct) seen = 1;
    }
    return count ? count : 1;
}

/* ---- helpers over code points -------------------------------------------------------------------- */
static inline int is_space(uint32_t c) { return (fl(c) & F_SPACE) != 0; }

static inline int ends_with(const uint32_t *c, size_t n, const char *s) {
    size_t m = strlen(s);
    if (m > n) return 0;
    for (size_t k = 0; k < m; k++) if (c[n - m + k] != (uint8_t)s[k]) return 0;
    return 1;
}

static inline uint32_t ascii_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x212A) return 'k'; /* KELVIN SIGN lower-cases to 'k' */
    return c;
}
static int contains_ci(const uint32_t *c, size_t n, const char *pat) {
    size_t m = strlen(pat);
    for (size_t i = 0; i + m <= n; i++) {
        size_t k = 0;
        while (k < m && ascii_lower(c[i + k]) == (uint8_t)pat[k]) k++;
        if (k == m) return 1;
    }
    return 0;
}

/* Duplicates among segments (datatrove's find_duplicates): (count, chars). */
typedef struct { int64_t dups, chars; } Dup;
static void dup_add(Table *tb, const uint32_t *c, size_t a, size_t b, Dup *d, int64_t idx) {
    Slot *s = table_get(tb, key_of(hash_cps(c + a, b - a), b - a), idx);
    if (s->count) { d->dups++; d->chars += (int64_t)(b - a); }
    s->count++;
}

typedef struct {
    Buf cps, line, stack, pre_sp, pre_cat, pw;
    Toks toks, ltoks;
    TokWork tw;
    Table tb;
} Work;

static const char *STOP[8] = {"the", "be", "to", "of", "and", "that", "have", "with"};
static const char *POLICY[6] = {"terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"};

static inline int linebreak_len(const uint32_t *c, size_t n, size_t i) {
    if (!(fl(c[i]) & F_LINEBREAK)) return 0;
    return (c[i] == '\r' && i + 1 < n && c[i + 1] == '\n') ? 2 : 1;
}

static int gopher(const uint32_t *c, size_t n, const Toks *t, double *o) {
    const Tok *p = (const Tok *)t->b.p;
    int64_t ns = 0, ns_len = 0, al = 0, stop = 0;
    for (size_t i = 0; i < t->n; i++) {
        const uint32_t *w = c + p[i].start;
        int64_t len = p[i].len;
        int sym = 1, alp = 0;
        for (int64_t k = 0; k < len; k++) {
            uint32_t f = fl(w[k]);
            if (!(f & F_DT_PUNCT)) sym = 0;
            if (f & F_ISALPHA) alp = 1;
        }
        if (!sym) { ns++; ns_len += len; }
        al += alp;
        if (len >= 2 && len <= 4)
            for (int s = 0; s < 8; s++) {
                if ((int64_t)strlen(STOP[s]) != len) continue;
                int eq = 1;
                for (int64_t k = 0; k < len && eq; k++) eq = w[k] == (uint8_t)STOP[s][k];
                if (eq) stop |= 1 << s;
            }
    }
    int64_t hashes = 0, ell = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == '#') hashes++;
        else if (c[i] == 0x2026) ell++;
    }
    for (size_t i = 0; i + 2 < n;) {
        if (c[i] == '.' && c[i + 1] == '.' && c[i + 2] == '.') { ell++; i += 3; } else i++;
    }
    int64_t lines = 0, bullets = 0, ell_lines = 0;
    size_t ls = 0, i = 0;
    while (ls < n) {
        int br = 0;
        i = ls;
        while (i < n && !(br = linebreak_len(c, n, i))) i++;
        size_t a = ls, b = i;
        while (a < b && is_space(c[a])) a++;
        while (b > a && is_space(c[b - 1])) b--;
        lines++;
        if (a < b && (c[a] == 0x2022 || c[a] == '-')) bullets++;
        if (b > a && (c[b - 1] == 0x2026 || ends_with(c + a, b - a, "..."))) ell_lines++;
        ls = i + (size_t)br;
        if (!br) break;
    }
    int64_t nw = (int64_t)t->n;
    o[G_N_WORDS] = (double)ns;
    o[G_MEAN_LEN] = ns ? (double)ns_len / (double)ns : NAN;
    o[G_HASH] = nw ? (double)hashes / (double)nw : NAN;
    o[G_ELLIPSIS] = nw ? (double)ell / (double)nw : NAN;
    o[G_BULLET_LINES] = lines ? (double)bullets / (double)lines : NAN;
    o[G_ELLIPSIS_LINES] = lines ? (double)ell_lines / (double)lines : NAN;
    o[G_ALPHA] = nw ? (double)al / (double)nw : NAN;
    o[G_STOP] = (double)__builtin_popcountll((unsigned long long)stop);
    return 0;
}

/* Segments of c[a, b) split at runs of at least min_nl newlines (re.split(r"\n{min_nl,}")), each
 * counted as a duplicate or not; every run is skipped whole, so a shorter one never splits. */
static int split_dups(Work *w, const uint32_t *c, size_t a, size_t b, size_t min_nl, size_t n, Dup *d,
                      int64_t *nseg) {
    if (table_reset(&w->tb, (n >> 4) + 16) < 0) return -1;
    d->dups = d->chars = 0;
    *nseg = 0;
    size_t ps = a, i = a;
    while (i < b) {
        if (c[i] != '\n') { i++; continue; }
        size_t j = i;
        while (j < b && c[j] == '\n') j++;
        if (j - i >= min_nl) {
            dup_add(&w->tb, c, ps, i, d, (*nseg)++);
            ps = j;
        }
        i = j;
    }
    dup_add(&w->tb, c, ps, b, d, (*nseg)++);
    return 0;
}

static int repetition(const uint32_t *c, size_t n, const Toks *t, Work *w, double *o) {
    if (n == 0) {
        for (int k = R_PARA; k <= R_DUP10; k++) o[k] = NAN;
        return 0;
    }
    double len = (double)n;
    /* paragraphs: re.split(r"\n{2,}", text.strip()) */
    size_t a = 0, b = n;
    while (a < b && is_space(c[a])) a++;
    while (b > a && is_space(c[b - 1])) b--;
    Dup d;
    int64_t nseg;
    if (split_dups(w, c, a, b, 2, n, &d, &nseg) < 0) return -1;
    o[R_PARA] = (double)d.dups / (double)nseg;
    o[R_PARA_CHAR] = (double)d.chars / len;
    /* lines: re.split("\n+", text) */
    if (split_dups(w, c, 0, n, 1, n, &d, &nseg) < 0) return -1;
    o[R_LINE] = (double)d.dups / (double)nseg;
    o[R_LINE_CHAR] = (double)d.chars / len;
    /* n-grams: prefix hashes over the words joined by ' ' (top n-grams) and by '' (duplicated n-grams) */
    const Tok *p = (const Tok *)t->b.p;
    size_t nt = t->n;
    size_t total = 0;
    for (size_t k = 0; k < nt; k++) total += (size_t)p[k].len;
    /* pos_sp[k], pos_cat[k]: offsets of word k in the two joined strings; pw: powers */
    if (grow(&w->pre_sp, (total + nt + 2) * sizeof(uint64_t)) < 0 || grow(&w->pre_cat, (total + 2) * sizeof(uint64_t)) < 0 ||
        grow(&w->pw, (total + nt + 2) * sizeof(uint64_t)) < 0 || grow(&w->stack, (2 * nt + 2) * sizeof(int64_t)) < 0)
        return -1;
    uint64_t *hs = (uint64_t *)w->pre_sp.p, *hc = (uint64_t *)w->pre_cat.p, *pw = (uint64_t *)w->pw.p;
    int64_t *pos = (int64_t *)w->stack.p; /* pos[2k]: in joined-with-spaces, pos[2k+1]: in concatenated */
    size_t js = 0, jc = 0;
    hs[0] = hc[0] = 0; pw[0] = 1;
    for (size_t k = 0; k < nt; k++) {
        if (k) { hs[js + 1] = addmod(mulmod(hs[js], BASE61), (uint64_t)' ' + 1); js++; }
        pos[2 * k] = (int64_t)js; pos[2 * k + 1] = (int64_t)jc;
        for (int64_t q = 0; q < p[k].len; q++) {
            uint64_t v = (uint64_t)c[p[k].start + q] + 1;
            hs[js + 1] = addmod(mulmod(hs[js], BASE61), v); js++;
            hc[jc + 1] = addmod(mulmod(hc[jc], BASE61), v); jc++;
        }
    }
    for (size_t k = 1; k <= js; k++) pw[k] = mulmod(pw[k - 1], BASE61);
#define SUBHASH(H, l, r) addmod(H[r], MOD61 - mulmod(H[l], pw[(r) - (l)]))
    for (int ng = 2; ng <= 4; ng++) {
        double v = 0.0;
        if (nt >= (size_t)ng) {
            if (table_reset(&w->tb, nt) < 0) return -1;
            Slot *best = NULL;
            int64_t best_len = 0;
            for (size_t k = 0; k + (size_t)ng <= nt; k++) {
                size_t l = (size_t)pos[2 * k], r = (size_t)(pos[2 * (k + ng - 1)] + p[k + ng - 1].len);
                Slot *s = table_get(&w->tb, key_of(SUBHASH(hs, l, r), r - l), (int64_t)k);
                s->count++;
                if (!best || s->count > best->count || (s->count == best->count && s->first < best->first)) {
                    best = s; best_len = (int64_t)(r - l);
                }
            }
            v = (double)(best_len * best->count) / len;
        }
        o[R_TOP2 + ng - 2] = v;
    }
    for (int ng = 5; ng <= 10; ng++) {
        int64_t rep = 0;
        if (nt >= (size_t)ng) {
            if (table_reset(&w->tb, nt) < 0) return -1;
            size_t k = 0;
            while (k + (size_t)ng <= nt) {
                size_t l = (size_t)pos[2 * k + 1];
                size_t r = (size_t)(pos[2 * (k + ng - 1) + 1] + p[k + ng - 1].len);
                Slot *s = table_get(&w->tb, key_of(SUBHASH(hc, l, r), r - l), (int64_t)k);
                if (s->count) { rep += (int64_t)(r - l); k += (size_t)ng; }
                else { s->count = 1; k++; }
            }
        }
        o[R_DUP5 + ng - 5] = (double)rep / len;
    }
#undef SUBHASH
    return 0;
}

static int c4(const uint32_t *c, size_t n, Work *w, double *o) {
    int64_t lorem = 0, curly = 0, sents = 0, kept = 0;
    size_t ls = 0;
    while (ls < n) {
        int br = 0;
        size_t i = ls;
        while (i < n && !(br = linebreak_len(c, n, i))) i++;
        size_t a = ls, b = i;
        ls = i + (size_t)br;
        while (a < b && is_space(c[a])) a++;
        while (b > a && is_space(c[b - 1])) b--;
        /* words = line.split(); a word over 1000 characters drops the line */
        int64_t nw = 0, longest = 0;
        for (size_t k = a; k < b;) {
            if (is_space(c[k])) { k++; continue; }
            size_t e = k;
            while (e < b && !is_space(c[e])) e++;
            nw++;
            if ((int64_t)(e - k) > longest) longest = (int64_t)(e - k);
            k = e;
        }
        if (longest > 1000) { if (!br) break; continue; }
        /* remove citations: \[\d*]|\[edit]|\[citation needed] */
        if (grow(&w->line, (b - a + 1) * sizeof(uint32_t)) < 0) return -1;
        uint32_t *L = (uint32_t *)w->line.p;
        size_t m = 0;
        for (size_t k = a; k < b;) {
            if (c[k] == '[') {
                size_t e = k + 1;
                while (e < b && (fl(c[e]) & F_DIGIT)) e++;
                if (e < b && c[e] == ']') { k = e + 1; continue; }
                static const char *CIT[2] = {"edit]", "citation needed]"};
                int hit = 0;
                for (int q = 0; q < 2 && !hit; q++) {
                    size_t pl = strlen(CIT[q]);
                    if (k + 1 + pl <= b) {
                        size_t z = 0;
                        while (z < pl && c[k + 1 + z] == (uint8_t)CIT[q][z]) z++;
                        if (z == pl) { k += 1 + pl; hit = 1; }
                    }
                }
                if (hit) continue;
            }
            L[m++] = c[k++];
        }
        int terminal = m > 0 && (L[m - 1] == '.' || L[m - 1] == '?' || L[m - 1] == '!' || L[m - 1] == '"' || L[m - 1] == '\'')
                       && !ends_with(L, m, "...");
        if (terminal && nw >= 3) {
            if (contains_ci(L, m, "lorem ipsum")) lorem++;
            else if (contains_ci(L, m, "javascript")) {}
            else {
                int has_curly = 0;
                for (size_t k = 0; k < m; k++) if (L[k] == '{') { has_curly = 1; break; }
                if (has_curly) curly++;
                else {
                    int policy = 0;
                    for (int q = 0; q < 6 && !policy; q++) policy = contains_ci(L, m, POLICY[q]);
                    if (!policy) {
                        if (tokenize(L, m, &w->ltoks, &w->tw, 1) < 0) return -1;
                        sents += sentences(L, &w->ltoks);
                        kept++;
                    }
                }
            }
        }
        if (!br) break;
    }
    o[C_LOREM] = (double)lorem;
    o[C_CURLY] = (double)curly;
    o[C_SENTENCES] = (double)sents;
    o[C_KEPT] = (double)kept;
    return 0;
}

static int fineweb(const uint32_t *c, size_t n, const Toks *t, Work *w, double *o) {
    int64_t lines = 0, punct = 0, shorts = 0, newlines = 0;
    Dup d = {0, 0};
    if (table_reset(&w->tb, (n >> 4) + 16) < 0) return -1;
    size_t ls = 0;
    while (1) {
        size_t i = ls;
        while (i < n && c[i] != '\n') i++;
        int blank = 1;
        for (size_t k = ls; k < i && blank; k++) if (!is_space(c[k])) blank = 0;
        if (!blank) {
            lines++;
            if (fl(c[i - 1]) & F_TERMINAL) punct++;
            if (i - ls <= 30) shorts++;
            dup_add(&w->tb, c, ls, i, &d, lines);
        }
        if (i >= n) break;
        newlines++;
        ls = i + 1;
    }
    if (!lines) {
        o[F_PUNCT] = o[F_SHORT] = o[F_DUP] = o[F_LIST] = NAN;
        return 0;
    }
    o[F_PUNCT] = (double)punct / (double)lines;
    o[F_SHORT] = (double)shorts / (double)lines;
    o[F_DUP] = (double)d.chars / (double)(n - (size_t)newlines);
    o[F_LIST] = t->n ? (double)newlines / (double)t->n : NAN;
    return 0;
}

static PyObject *py_signals(PyObject *self, PyObject *args) {
    PyObject *offsets, *data, *out;
    int wide, sets;
    if (!PyArg_ParseTuple(args, "OOpiO", &offsets, &data, &wide, &sets, &out)) return NULL;
    Strings s;
    if (get_strings(offsets, data, wide, &s) < 0) return NULL;
    if (check_bounds(&s) < 0) { release_strings(&s); return NULL; }
    Py_buffer ob;
    if (get_out(out, &ob, (Py_ssize_t)(NCOLS * s.n * sizeof(double))) < 0) { release_strings(&s); return NULL; }
    double *res = (double *)ob.buf;
    Work w;
    memset(&w, 0, sizeof w);
    int err = 0;
    double row[NCOLS];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < s.n && !err; r++) {
        int64_t lo = off_at(&s, r), hi = off_at(&s, r + 1);
        size_t nb = (size_t)(hi - lo);
        if (grow(&w.cps, (nb + 1) * sizeof(uint32_t)) < 0) { err = 1; break; }
        uint32_t *c = (uint32_t *)w.cps.p;
        size_t n = decode_utf8((const uint8_t *)s.data.buf + lo, nb, c);
        for (int k = 0; k < NCOLS; k++) row[k] = NAN;
        if (sets & (SET_GOPHER | SET_REP | SET_FINEWEB))
            if (tokenize(c, n, &w.toks, &w.tw, 0) < 0) { err = 1; break; }
        if ((sets & SET_GOPHER) && gopher(c, n, &w.toks, row) < 0) err = 1;
        if (!err && (sets & SET_REP) && repetition(c, n, &w.toks, &w, row) < 0) err = 1;
        if (!err && (sets & SET_C4) && c4(c, n, &w, row) < 0) err = 1;
        if (!err && (sets & SET_FINEWEB) && fineweb(c, n, &w.toks, &w, row) < 0) err = 1;
        for (int k = 0; k < NCOLS; k++) res[(size_t)k * (size_t)s.n + (size_t)r] = row[k];
    }
    Py_END_ALLOW_THREADS
    free(w.cps.p); free(w.line.p); free(w.stack.p); free(w.pre_sp.p); free(w.pre_cat.p); free(w.pw.p);
    free(w.toks.b.p); free(w.ltoks.b.p); free(w.tb.b.p);
    free(w.tw.aff.p); free(w.tw.matches.p); free(w.tw.seen.p); free(w.tw.tmp.b.p);
    PyBuffer_Release(&ob);
    release_strings(&s);
    if (err) { if (!PyErr_Occurred()) PyErr_NoMemory(); return NULL; }
    Py_RETURN_NONE;
}

/* Words of one string as datatrove's English split_into_words gives them (for tests and checks). */
static PyObject *py_words(PyObject *self, PyObject *args) {
    PyObject *str;
    int with_ws = 0;
    if (!PyArg_ParseTuple(args, "U|p", &str, &with_ws)) return NULL;
    Py_ssize_t n = PyUnicode_GetLength(str);
    Py_UCS4 *c = PyUnicode_AsUCS4Copy(str);
    if (!c) return NULL;
    Toks t = {{NULL, 0}, 0};
    TokWork tw;
    memset(&tw, 0, sizeof tw);
    PyObject *res = NULL;
    if (tokenize((const uint32_t *)c, (size_t)n, &t, &tw, with_ws) == 0) {
        res = PyList_New((Py_ssize_t)t.n);
        const Tok *p = (const Tok *)t.b.p;
        for (size_t i = 0; res && i < t.n; i++) {
            PyObject *w = PyUnicode_Substring(str, p[i].start, p[i].start + p[i].len);
            if (!w) { Py_CLEAR(res); break; }
            PyList_SET_ITEM(res, (Py_ssize_t)i, w);
        }
    }
    free(t.b.p); free(tw.aff.p); free(tw.matches.p); free(tw.seen.p); free(tw.tmp.b.p); PyMem_Free(c);
    return res;
}

/* C4's sentence count of one line (spaCy's sentencizer over this tokenizer). */
static PyObject *py_sentences(PyObject *self, PyObject *args) {
    PyObject *str;
    if (!PyArg_ParseTuple(args, "U", &str)) return NULL;
    Py_ssize_t n = PyUnicode_GetLength(str);
    Py_UCS4 *c = PyUnicode_AsUCS4Copy(str);
    if (!c) return NULL;
    Toks t = {{NULL, 0}, 0};
    TokWork tw;
    memset(&tw, 0, sizeof tw);
    PyObject *res = NULL;
    if (tokenize((const uint32_t *)c, (size_t)n, &t, &tw, 1) == 0) res = PyLong_FromLongLong(sentences((const uint32_t *)c, &t));
    free(t.b.p); free(tw.aff.p); free(tw.matches.p); free(tw.seen.p); free(tw.tmp.b.p); PyMem_Free(c);
    return res;
}

static PyMethodDef methods[] = {
    {"signals", py_signals, METH_VARARGS,
     "signals(offsets, data, wide, sets, out): fill out (float64, NCOLS x n, NaN = null) with the quality signals "
     "of the sets (1 gopher, 2 gopher-repetition, 4 c4, 8 fineweb) of each string of an Arrow string array."},
    {"words", py_words, METH_VARARGS, "words(text, with_ws=False) -> list of str: the English word tokens."},
    {"sentences", py_sentences, METH_VARARGS, "sentences(line) -> int: spaCy sentencizer's sentence count."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_signals", "Heuristic quality signals over Arrow string buffers.", -1, methods};

PyMODINIT_FUNC PyInit__signals(void) {
    if (specials_init() < 0 || patterns_init() < 0) return NULL;
    after_digit_init();
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "NCOLS", NCOLS) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
