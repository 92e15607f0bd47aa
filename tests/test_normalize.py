"""Text normalisation (curate/_native.c) against a pure-Python oracle of the original pipeline:
simple = pyarrow's utf8_lower, then the byte loop below over the class ranges of _unicode_tables.h.
Every SIMD path is run in a subprocess (the level is cached per process)."""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.text.arrow import hash128, normalize

ROOT = Path(__file__).resolve().parent.parent
HEADER = (ROOT / "curate" / "_unicode_tables.h").read_text()
LEVELS = ("avx2", "sse4.1", "scalar")


def _table(name: str) -> list[int]:
    body = re.search(rf"\b{name}\[\] = \{{(.*?)\}};", HEADER, re.S).group(1)
    return [int(x, 0) for x in body.replace("\n", " ").split(",") if x.strip()]


LO, HI, KL = _table("UCLASS_LO"), _table("UCLASS_HI"), _table("UCLASS_K")


@functools.cache
def klass(cp: int) -> int:
    """0 keep, 1 punctuation/symbol, 2 digit, 3 space/control, 4 ASCII upper case."""
    if cp < 128:
        if cp < 32 or cp == 127 or cp == 32:
            return 3
        if 48 <= cp <= 57:
            return 2
        if 65 <= cp <= 90:
            return 4
        return 0 if 97 <= cp <= 122 else 1
    i = bisect.bisect_right(LO, cp) - 1
    return KL[i] if i >= 0 and cp <= HI[i] else 0


def ref_one(s: str, simple: bool) -> str:
    """The original C loop (before the SIMD rewrite), character by character."""
    out, pending, any_ = [], False, False
    for ch in s:
        k = klass(ord(ch))
        if not simple and k != 3:
            k = 0
        if k in (1, 3):
            pending = True
            continue
        if pending and any_:
            out.append(" ")
        pending, any_ = False, True
        out.append("0" if k == 2 else chr(ord(ch) + 32) if k == 4 else ch)
    return "".join(out)


def reference(texts, mode: str) -> list[str]:
    arr = pa.array(texts, pa.string()).fill_null("")
    if mode == "simple":
        arr = pc.utf8_lower(arr)
    return [ref_one(s, mode == "simple") for s in arr.to_pylist()]


# A second, independent oracle for whitespace mode: one regex over the space/control class.
_WS = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b, k in zip(LO, HI, KL, strict=True) if k == 3)
WS_RE = re.compile(f"[\\x00-\\x20\\x7f{_WS}]+")


def ref_whitespace_regex(s: str) -> str:
    return WS_RE.sub(" ", s).strip(" ")


def ref_bytes_whitespace(b: bytes) -> bytes:
    """The original loop byte by byte, for text that is not valid UTF-8 (whitespace mode never
    validated it; a malformed sequence is decoded as the loop always did and kept unless a space)."""
    out, pending, any_, j, n = bytearray(), False, False, 0, len(b)
    while j < n:
        c, k = b[j], 1
        if c < 0x80:
            cls = klass(c)
        else:
            if c >> 5 == 6 and j + 1 < n:
                cp, k = ((c & 0x1F) << 6) | (b[j + 1] & 0x3F), 2
            elif c >> 4 == 14 and j + 2 < n:
                cp, k = ((c & 0x0F) << 12) | ((b[j + 1] & 0x3F) << 6) | (b[j + 2] & 0x3F), 3
            elif c >> 3 == 30 and j + 3 < n:
                cp, k = ((c & 0x07) << 18) | ((b[j + 1] & 0x3F) << 12) | ((b[j + 2] & 0x3F) << 6) | (b[j + 3] & 0x3F), 4
            else:
                cp = 0xFFFD
            i = bisect.bisect_right(LO, cp) - 1
            cls = KL[i] if i >= 0 and LO[i] <= cp <= HI[i] else 0
        if cls == 3:
            pending = True
        else:
            if pending and any_:
                out += b" "
            pending, any_ = False, True
            out += b[j:j + k]
        j += k
    return bytes(out)


def malformed() -> pa.Array:
    rnd = random.Random(3)
    alphabet = [32, 10, 0, 0x7F, 97, 65, 0x80, 0xBF, 0xC0, 0xC1, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xF8, 0xFF]
    docs = [bytes(rnd.choice(alphabet) if rnd.random() < 0.8 else rnd.randrange(256) for _ in range(rnd.randrange(0, 80)))
            for _ in range(3000)]
    docs += [b"ab \xe2\xe2 ", b"\xc0\x80x\xc1\xa0y", b"\xe0\x80\xa0z", b"\xc3 "]
    b = pa.array(docs, pa.binary())
    return pa.Array.from_buffers(pa.string(), len(b), b.buffers())  # unchecked, as from a raw buffer


def ref_hashes(texts, mode: str, seed: int = 0, raw_seed: int = 1) -> np.ndarray:
    """What dedup exact's hash_batch computed: hash of the normal form, or of the raw text when that is empty."""
    raw = pa.array(texts, pa.string()).fill_null("")
    norm = raw if mode == "none" else pa.array(reference(texts, mode), pa.string())
    h = hash128(norm, seed)
    empty = np.array([len(x) == 0 for x in norm.to_pylist()], bool)
    h[empty] = hash128(raw, raw_seed)[empty]
    return h


# ---- inputs ------------------------------------------------------------------------------------

SPECIAL = ["ÀÉÎÕÜ", "İstanbul", "ẞTRASSE", "ΟΔΟΣ", "МОСКВА", "👍🏽", "e\u0301", "漢字", "٣٤", "ＡＢＣ１２", "Ⓐ",
           "Ⅻ", "ǅ", "\u212a", "\u2126", "\u023a\u023e", "ⱢⱤ", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b",
           "\ufeff", "\u1680", "’", "—", "…", "ß", "Ꞌ", "\U00010400", "\U0001e900", "\x7f", "\x00", "\x1f"]
SEPS = [" ", "  ", "\t", "\n", "\n\n", " \r\n ", "\u00a0", "\u3000 ", "\u2028", "...", "-", "!?", " — "]


def edge_texts() -> list[str]:
    out = ["", " ", "  ", "a", "A", "Z9", "!", "\x00", "".join(map(chr, range(128))), " ".join(map(chr, range(128))),
           "".join(map(chr, range(127, -1, -1))), " ".join(SPECIAL), "".join(SPECIAL)]
    # runs of separators at the start, the end and around 16- and 32-byte block edges
    sizes = [0, 1, 2, 3, 7, 8, 14, 15, 16, 17, 18, 30, 31, 32, 33, 34, 40]
    for sep in (" ", "\t", "\n", " \n", "\u00a0", ",", "\u3000"):
        for a in sizes:
            for b in sizes:
                out.append(sep * a + "Ab0" * (b // 3) + "x" * (b % 3) + sep * (a % 5 + 1) + "wOrd" + sep * b)
    for n in range(0, 41):
        for sep in (" ", "  ", "\n\n", "é", "É"):
            out.append("x" * n + sep + "y" * (40 - n) + sep + "Q" * n)
    return out


def random_texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    words = ["the", "The", "QUICK", "brown", "fox42", "x", "naïve", "Ünïcödé", "a1b2c3", "it's", "e.g.", "C++",
             "(see)", "[1]", "http://x.org/a?b=c", "don’t", "“quoted”", "Ελληνικά", "Кириллица", "日本語", "😀",
             "\U0001f468\u200d\U0001f469", "Ǆ", "İ", "ﬁ", "Ⱥ", "K", "Ω", "ÀÉÎ", "0", "12345678901234567890"] + SPECIAL
    out = []
    for _ in range(n):
        parts = []
        if rnd.random() < 0.2:
            parts.append(rnd.choice(SEPS))
        for _ in range(rnd.randrange(0, 120)):
            parts.append(rnd.choice(words) if rnd.random() < 0.15 else "".join(
                rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(rnd.randrange(1, 12))))
            parts.append(" " if rnd.random() < 0.85 else rnd.choice(SEPS))
        if rnd.random() < 0.5:
            parts.pop() if parts else None
        out.append("".join(parts))
    return out


@functools.cache
def sample_texts() -> tuple[str, ...]:
    texts = []
    for p in sorted((ROOT / "data" / "sample" / "raw").glob("docs-*.jsonl*")):
        with (gzip.open(p, "rt") if p.suffix == ".gz" else open(p)) as f:
            for line in f:
                try:
                    t = json.loads(line).get("text")
                except (ValueError, AttributeError):
                    continue  # the sample has deliberately broken lines
                if isinstance(t, str):
                    texts.append(t)
    return tuple(texts)


@functools.cache
def corpus() -> tuple[str, ...]:
    return tuple(edge_texts()) + tuple(random_texts(1500, 7)) + sample_texts()


def every_code_point() -> list[str]:
    """Each code point between letters, 64 to a document: its class and its lower case show in the output."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    return ["".join("Ab" + chr(c) for c in cps[i:i + 64]) + "Z" for i in range(0, len(cps), 64)]


@functools.cache
def expected(mode: str, which: str) -> tuple[str, ...]:
    texts = corpus() if which == "corpus" else every_code_point()
    return tuple(reference(list(texts), mode))


# ---- in-process tests (the best SIMD path of this CPU) --------------------------------------------

def test_the_sample_corpus_is_there(sample_raw):
    assert len(sample_texts()) > 1000


@pytest.mark.parametrize("mode", ["whitespace", "simple"])
def test_normalize_equals_the_reference(sample_raw, mode):
    texts = list(corpus())
    want = list(expected(mode, "corpus"))
    got = normalize(pa.array(texts), mode).to_pylist()
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, (len(bad), repr(texts[bad[0]][:200]), got[bad[0]][:200], want[bad[0]][:200])
    if mode == "whitespace":
        assert want == [ref_whitespace_regex(t) for t in texts]


def case_map_pinned() -> None:
    """The header's lower-case map is pyarrow's utf8_lower of the version it names: compare all of Unicode
    only under that version (another one may know newer characters)."""
    src = re.search(r'CURATE_LOWER_SOURCE "pyarrow ([^ "]+)', HEADER)
    if src and src.group(1) != pa.__version__:
        pytest.skip(f"case map generated with pyarrow {src.group(1)}, installed {pa.__version__}")


@pytest.mark.parametrize("mode", ["whitespace", "simple"])
def test_every_code_point(mode):
    case_map_pinned()
    texts = every_code_point()
    got = normalize(pa.array(texts), mode).to_pylist()
    want = list(expected(mode, "cps"))
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, [(hex(ord(c)), a, b) for i in bad[:3] for a, b, c in [(got[i], want[i], texts[i][2])]]


@pytest.mark.parametrize("mode", ["whitespace", "simple"])
def test_offsets_slices_and_nulls(mode):
    texts = list(corpus()[:400]) + [None, "  X  ", None]
    want = reference(texts, mode)
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(texts, typ)
        assert normalize(arr, mode).to_pylist() == want
        assert normalize(arr.slice(37, 300), mode).to_pylist() == want[37:337]
        assert normalize(pa.chunked_array([arr[:5], arr[5:]]), mode).to_pylist() == want
        assert normalize(arr.slice(5, 0), mode).to_pylist() == []
    assert normalize(pa.array([], pa.string()), mode).to_pylist() == []
    assert normalize(pa.array([None, None], pa.string()), mode).to_pylist() == ["", ""]


def test_unknown_mode():
    with pytest.raises(ValueError):
        normalize(pa.array(["a"]), "fancy")


def test_malformed_utf8_in_whitespace_mode():
    arr = malformed()
    want = [ref_bytes_whitespace(x) for x in pa.Array.from_buffers(pa.binary(), len(arr), arr.buffers()).to_pylist()]
    got = normalize(arr, "whitespace")
    assert pa.Array.from_buffers(pa.large_binary(), len(got), got.buffers()).to_pylist() == want


ASCII_HEAVY = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789      .,;'\"!?-\t\n\r\x0b\x0c\x00\x7f")
TEXT = st.lists(st.one_of(st.sampled_from(ASCII_HEAVY), st.sampled_from(SPECIAL + SEPS),
                          st.characters(blacklist_categories=("Cs",))), max_size=200).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, max_size=8))
def test_hypothesis_strings(texts):
    for mode in ("whitespace", "simple"):
        want = reference(texts, mode)
        assert normalize(pa.array(texts, pa.string()), mode).to_pylist() == want
        assert normalize(pa.array(texts, pa.large_string()), mode).to_pylist() == want
        if mode == "whitespace":
            assert want == [ref_whitespace_regex(t) for t in texts]


# ---- dedup exact: the fused kernel gives the hashes of the original two passes -------------------

@pytest.mark.parametrize("mode", ["none", "whitespace", "simple"])
def test_hash_batch_equals_normalize_then_hash(mode):
    from curate.stages.dedup_exact import DedupExact

    texts = list(corpus()[:600]) + [None, "", "!!!", "???", "  ", "\u3000", "A  b", "a b"]
    batch = pa.record_batch({"text": pa.array(texts, pa.string()), "id": pa.array([str(i) for i in range(len(texts))])})

    class Keep:
        kind, column = "first", None

    class Params:
        normalize = mode

    stage = DedupExact.__new__(DedupExact)
    object.__setattr__(stage, "params", Params)
    object.__setattr__(stage, "keep", Keep)
    t = stage.hash_batch(3, 100, batch)
    h = np.stack([t.column("h1").to_numpy(), t.column("h2").to_numpy()], axis=1)
    assert (h == ref_hashes(texts, mode)).all()
    if mode != "none":  # "!!!" and "???" normalise to nothing in simple mode but stay apart
        i = texts.index("!!!")
        assert (h[i] != h[i + 1]).any()


def test_normalize_hash128_seeds_and_offsets():
    from curate import _native
    from curate.text.arrow import buffers

    texts = list(corpus()[:500]) + ["", "...", " "]
    for mode in ("whitespace", "simple"):
        for typ in (pa.string(), pa.large_string()):
            arr = pa.array(texts, typ).slice(3)
            offsets, data, wide = buffers(arr)
            out = np.empty((len(arr), 2), np.uint64)
            _native.normalize_hash128(offsets, data, wide, out, mode == "simple", 11, 5)
            assert (out == ref_hashes(texts[3:], mode, 11, 5)).all()


# ---- every SIMD path, in subprocesses ------------------------------------------------------------

LEVEL_SCRIPT = r"""
import hashlib, json, sys
import numpy as np, pyarrow as pa
from curate import _native
from curate.text.arrow import buffers, normalize
sys.path.insert(0, sys.argv[1])
from test_normalize import corpus, every_code_point, malformed
res = {}
for which, texts in (("corpus", list(corpus())), ("cps", every_code_point())):
    arr = pa.array(texts, pa.large_string() if which == "cps" else pa.string())
    for mode in ("whitespace", "simple"):
        norm = normalize(arr, mode)
        res[which + mode] = norm.to_pylist() if which == "corpus" else hashlib.sha256(
            "\x00".join(norm.to_pylist()).encode()).hexdigest()
        offsets, data, wide = buffers(arr)
        out = np.empty((len(arr), 2), np.uint64)
        _native.normalize_hash128(offsets, data, wide, out, mode == "simple", 0, 1)
        res["hash" + which + mode] = hashlib.sha256(out.tobytes()).hexdigest()
norm = normalize(malformed(), "whitespace")
res["malformed"] = [x.hex() for x in pa.Array.from_buffers(pa.large_binary(), len(norm), norm.buffers()).to_pylist()]
json.dump(res, sys.stdout)
"""


@pytest.mark.parametrize("level", LEVELS)
def test_every_cpu_path(sample_raw, level):
    import hashlib

    env = {**os.environ, "CURATE_SIMD": level}
    got = json.loads(subprocess.run([sys.executable, "-c", LEVEL_SCRIPT, str(Path(__file__).parent)], env=env,
                                    capture_output=True, text=True, check=True).stdout)
    for mode in ("whitespace", "simple"):
        want = list(expected(mode, "corpus"))
        bad = [i for i, (g, w) in enumerate(zip(got["corpus" + mode], want, strict=True)) if g != w]
        assert not bad and len(got["corpus" + mode]) == len(want), (level, mode, bad[:3])
        assert got["hashcorpus" + mode] == hashlib.sha256(ref_hashes(list(corpus()), mode).tobytes()).hexdigest()
    arr = malformed()
    want = [ref_bytes_whitespace(x) for x in pa.Array.from_buffers(pa.binary(), len(arr), arr.buffers()).to_pylist()]
    assert got["malformed"] == [x.hex() for x in want], level
    case_map_pinned()
    for mode in ("whitespace", "simple"):
        want = list(expected(mode, "cps"))
        assert got["cps" + mode] == hashlib.sha256("\x00".join(want).encode()).hexdigest(), (level, mode)
        h = hash128(pa.array(want, pa.large_string()))  # no document of every_code_point() normalises to nothing
        assert got["hashcps" + mode] == hashlib.sha256(h.tobytes()).hexdigest(), (level, mode)
