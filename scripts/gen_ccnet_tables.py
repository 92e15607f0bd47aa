#!/usr/bin/env python3
"""Generate curate/_ccnet_tables.h: CCNet's line normalisation, code point by code point, for the C
word tokeniser (curate/_tokenize.c).

CCNet's normalize(line, accent=True, case=True, numbers=True, punct=1) is: strip, str.lower(), NFD
and drop every Mn, every \\d -> '0', its fixed punctuation map, drop U+0000-001F and U+007F-009F.
All of that but strip works character by character, so the header stores, for each code point,
what the composed transform makes of it. Two effects span characters and the C code handles them:
lower() turns 'Σ' into final 'ς' depending on its neighbours (case table below), and NFD reorders
adjacent combining marks by class, which after dropping Mn only matters for the few combining marks
that are not Mn (the "retained non-starters" below).

The header is committed so every machine tokenises alike; rerun only to change Unicode version.

    python scripts/gen_ccnet_tables.py > curate/_ccnet_tables.h
"""

import re
import sys
import unicodedata

# cc_net/text_normalizer.py UNICODE_PUNCT, applied after NFD and digits ('１' is already '0' by then).
UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}
DIGIT_RE = re.compile(r"\d")

# Kinds of a non-ASCII input code point (low 4 bits of CC_VAL; bit 4: str.isspace(), which strip()
# removes at the ends of a line; the rest is a CC_POOL offset).
K_WORD, K_PUNCT, K_SPACE, K_DROP0, K_DROPN, K_ZERO, K_NS, K_EXC, K_SIGMA, K_HANGUL = range(10)
# Classes of an output character (tag byte in CC_POOL: class << 4 | UTF-8 length).
C_WORD, C_PUNCT, C_SPACE, C_NS = range(4)
# ASCII classes (CC_ACLS): word chars map through CC_AMAP; A_WSDROP: removed, but whitespace to
# strip(); bytes >= 0x80 are A_HIGH.
A_WORD, A_PUNCT, A_SPACE, A_DROP, A_WSDROP, A_EOL, A_HIGH = range(7)
# Case table for final sigma: 0 neither, 1 cased, 2 case-ignorable (as Python's lower() sees them).
SBASE, SCOUNT = 0xAC00, 11172


def normalize_char(c: str) -> str:
    s = unicodedata.normalize("NFD", c.lower())
    s = "".join(x for x in s if unicodedata.category(x) != "Mn")
    s = DIGIT_RE.sub("0", s)
    s = "".join(UNICODE_PUNCT.get(x, x) for x in s)
    return "".join(x for x in s if not (ord(x) < 32 or 127 <= ord(x) < 160))


def out_class(x: str) -> int:
    if x.isspace():
        return C_SPACE
    if unicodedata.category(x)[0] in "PS":
        return C_PUNCT
    return C_NS if unicodedata.combining(x) else C_WORD


def case_class(c: str) -> int:
    # Probe Python's own final-sigma rule: an ignorable char is skipped, a cased one makes 'Σ' final.
    if (" " + c + "Σ").lower()[-1] == "ς":
        return 1
    if ("A" + c + "Σ").lower()[-1] == "ς":
        return 2
    return 0


def hangul(cp: int) -> str:
    s = cp - SBASE
    out = chr(0x1100 + s // 588) + chr(0x1161 + (s % 588) // 28)
    return out + (chr(0x11A7 + s % 28) if s % 28 else "")


def build():
    pool, pool_at = [], {}
    ns = {}
    vals = []  # (start, val) for code points 0x80.., merged later
    maxexp = 0.0
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp < 0xE000:
            vals.append(K_WORD)  # unreachable: the decoder turns surrogate bytes into U+FFFD
            continue
        c = chr(cp)
        out = normalize_char(c)
        maxexp = max(maxexp, sum(len(x.encode()) + 1 for x in out) / len(c.encode()))
        for x in out:
            assert normalize_char(x) == x, hex(cp)  # outputs are fixed points
            if out_class(x) == C_NS:
                ns[ord(x)] = unicodedata.combining(x)
        nfd = unicodedata.normalize("NFD", c.lower())
        if SBASE <= cp < SBASE + SCOUNT:
            assert out == hangul(cp)
            vals.append(K_HANGUL)
        elif cp == 0x3A3:
            assert out == "σ"
            vals.append(K_SIGMA)
        elif out == c:
            vals.append({C_WORD: K_WORD, C_PUNCT: K_PUNCT, C_SPACE: K_SPACE, C_NS: K_NS}[out_class(c)])
        elif out == "":
            vals.append(K_DROP0 if any(unicodedata.combining(x) == 0 for x in nfd) else K_DROPN)
        elif out == "0":
            vals.append(K_ZERO)
        else:
            # the sequence starts with a starter, so an exception always ends a run of marks
            assert unicodedata.combining(nfd[0]) == 0, hex(cp)
            if out not in pool_at:
                entry = [len(out)]
                for x in out:
                    b = x.encode()
                    entry.append(out_class(x) << 4 | len(b))
                    entry.extend(b)
                pool_at[out] = len(pool)
                pool.extend(entry)
            vals.append(K_EXC | pool_at[out] << 5)
        if c.isspace():
            assert vals[-1] & 15 in (K_SPACE, K_DROP0, K_EXC), hex(cp)
            vals[-1] |= 16
    starts, merged = [], []
    for i, v in enumerate(vals):
        if not merged or merged[-1] != v:
            starts.append(0x80 + i)
            merged.append(v)
    assert maxexp <= 4, maxexp
    return starts, merged, vals[:0x800 - 0x80], pool, ns


def ascii_tables():
    cls, amap = [], []
    for cp in range(128):
        c = chr(cp)
        out = normalize_char(c)
        if c in "\n\r":
            k = A_EOL
        elif out == "":
            k = A_WSDROP if c.isspace() else A_DROP
        elif c.isspace():
            k = A_SPACE
        elif unicodedata.category(c)[0] in "PS":
            k = A_PUNCT
        else:
            k = A_WORD
        if k in (A_PUNCT, A_SPACE):
            assert out == c
        if k == A_WORD:
            assert len(out) == 1 and out_class(out) == C_WORD
        cls.append(k)
        amap.append(ord(out) if k == A_WORD else 0)
    return cls + [A_HIGH] * 128, amap


def case_ranges():
    starts, ks = [], []
    for cp in range(0x110000):
        k = 0 if 0xD800 <= cp < 0xE000 else case_class(chr(cp))
        if not ks or ks[-1] != k:
            starts.append(cp)
            ks.append(k)
    return starts, ks


def table(w, ctype: str, name: str, vals, per: int, fmt=str) -> None:
    w(f"static const {ctype} {name}[] = {{\n")
    for i in range(0, len(vals), per):
        w("    " + ", ".join(fmt(v) for v in vals[i:i + per]) + ",\n")
    w("};\n")


def main() -> None:
    starts, merged, low, pool, ns = build()
    acls, amap = ascii_tables()
    cstarts, cks = case_ranges()
    hx = lambda v: f"0x{v:X}"  # noqa: E731
    w = sys.stdout.write
    w(f"/* Generated by scripts/gen_ccnet_tables.py from Unicode {unicodedata.unidata_version}. Do not edit. */\n")
    w(f"#define CCNET_UNICODE_VERSION \"{unicodedata.unidata_version}\"\n\n")
    w("enum { K_WORD, K_PUNCT, K_SPACE, K_DROP0, K_DROPN, K_ZERO, K_NS, K_EXC, K_SIGMA, K_HANGUL };\n")
    w("enum { C_WORD, C_PUNCT, C_SPACE, C_NS };\n")
    w("enum { A_WORD, A_PUNCT, A_SPACE, A_DROP, A_WSDROP, A_EOL, A_HIGH };\n\n")
    w("/* ASCII: class of each byte (A_HIGH from 0x80; A_WSDROP: removed, but whitespace to strip);\n")
    w(" * lower case / digit -> '0' for A_WORD bytes. */\n")
    table(w, "uint8_t", "CC_ACLS", acls, 32)
    table(w, "uint8_t", "CC_AMAP", amap, 16)
    w("\n/* Code points >= 0x80: CC_VAL of the last CC_START <= cp. Low 4 bits: kind; bit 4: whitespace\n")
    w(" * (str.isspace: strip() removes it at the ends of a line). K_WORD, K_PUNCT,\n")
    w(" * K_SPACE, K_NS: unchanged (K_NS: a retained combining mark); K_DROP0/K_DROPN: removed, and\n")
    w(" * contains a starter / only combining marks; K_ZERO: '0'; K_HANGUL: NFD jamo; K_SIGMA: 'σ' or\n")
    w(" * final 'ς'; K_EXC: replaced by CC_POOL[val >> 5]: a count, then per character a tag byte\n")
    w(" * (class << 4 | UTF-8 length) and its bytes. */\n")
    w(f"#define CC_N_RANGES {len(starts)}\n")
    table(w, "uint32_t", "CC_START", starts, 10, hx)
    table(w, "uint32_t", "CC_VAL", merged, 10, hx)
    w("/* The same values, directly, for the two-byte code points 0x80-0x7FF (Latin, Greek, Cyrillic, ...). */\n")
    table(w, "uint32_t", "CC_VAL2", low, 10, hx)
    table(w, "uint8_t", "CC_POOL", pool, 20, hx)
    w("\n/* Combining marks that survive (not Mn) and their canonical combining class: NFD sorts them. */\n")
    w(f"#define CC_N_NS {len(ns)}\n")
    table(w, "uint32_t", "CC_NS_CP", sorted(ns), 10, hx)
    table(w, "uint8_t", "CC_NS_CCC", [ns[c] for c in sorted(ns)], 10)
    w("\n/* Final sigma context (Python's str.lower): 0 other, 1 cased, 2 case-ignorable, from CASE_START. */\n")
    w(f"#define CC_N_CASE {len(cstarts)}\n")
    table(w, "uint32_t", "CC_CASE_START", cstarts, 10, hx)
    table(w, "uint8_t", "CC_CASE_K", cks, 32)


if __name__ == "__main__":
    main()
