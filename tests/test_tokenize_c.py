"""curate._tokenize.ccnet_lines against a pure-Python port of CCNet's normalize + the token rule."""

import glob
import gzip
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate import _tokenize

ROOT = Path(__file__).resolve().parent.parent

# ---- reference: cc_net/text_normalizer.py normalize(line, accent, case, numbers, punct=1) ----

UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}
DIGIT_RE = re.compile(r"\d")
NON_PRINTING_RE = re.compile("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]")
LINE_RE = re.compile(r"\r\n|\r|\n")


def ccnet_normalize(line: str) -> str:
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = DIGIT_RE.sub("0", line)
    line = "".join(UNICODE_PUNCT.get(c, c) for c in line)
    return NON_PRINTING_RE.sub("", line)


def tokens(line: str) -> list[str]:
    out = []
    for piece in line.split():
        word = []
        for c in piece:
            if unicodedata.category(c)[0] in "PS":
                if word:
                    out.append("".join(word))
                    word = []
                out.append(c)
            else:
                word.append(c)
        if word:
            out.append("".join(word))
    return out


def reference(docs: list[str]) -> dict:
    """{(per_line, tokenize): [(doc index, text, ntok)]} as ccnet_lines should produce them.
    tokenize=False: the same lines, but each is CCNet's normalize(line) itself (a document: its
    lines joined by spaces)."""
    out = {(p, t): [] for p in (True, False) for t in (True, False)}
    for i, doc in enumerate(docs):
        lines = []
        for line in LINE_RE.split(doc):
            norm = ccnet_normalize(line)
            toks = tokens(norm)
            if toks:
                lines.append((" ".join(toks), norm, len(toks)))
        for t in (True, False):
            texts = [line[0 if t else 1] for line in lines]
            out[True, t] += [(i, text, line[2]) for text, line in zip(texts, lines, strict=True)]
            out[False, t].append((i, " ".join(texts), sum(line[2] for line in lines)))
    return out


# ---- the C function, wrapped the way the caller will use it ----


def buffers(arr: pa.Array):
    wide = pa.types.is_large_string(arr.type)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if wide else np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = bufs[2] if bufs[2] is not None else pa.py_buffer(b"")
    return offsets, data, wide


def ccnet_lines(arr: pa.Array, per_line: bool, tokenize: bool = True):
    text, offs, doc, ntok = _tokenize.ccnet_lines(*buffers(arr), per_line, tokenize)
    doc = np.frombuffer(doc, np.int64)
    ntok = np.frombuffer(ntok, np.int64)
    lines = pa.LargeStringArray.from_buffers(len(doc), pa.py_buffer(offs), pa.py_buffer(text))
    lines.validate(full=True)
    assert len(offs) == 8 * (len(doc) + 1) and np.frombuffer(offs, np.int64)[0] == 0
    return list(zip(doc.tolist(), lines.to_pylist(), ntok.tolist(), strict=True))


BOTH = (pa.string(), pa.large_string())  # int32 and int64 offsets


def check(docs: list[str], types=BOTH) -> None:
    arrs = [pa.array(docs, t) for t in types]
    ref = reference(docs)
    for (per_line, tokenize), want in ref.items():
        for t, arr in zip(types, arrs, strict=True):
            got = ccnet_lines(arr, per_line, tokenize)
            # report the first differing line, not two whole corpora
            first = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
            assert got == want, (t, per_line, tokenize, first, got[first:first + 1], want[first:first + 1])


def one(text: str) -> str:
    return ccnet_lines(pa.array([text]), False)[0][1]


# ---- hand cases ----


@pytest.mark.parametrize(
    "text, want",
    [
        ("", ""),
        ("   \n\n \r\n \t ", ""),
        ("hello, world...", "hello , world . . ."),
        ("!?.,;", "! ? . , ;"),
        ("Éléphant", "elephant"),
        ("٣ १ １ 42", "0 0 0 00"),  # '１' is a digit before it reaches the punctuation map
        ("中文，句子。好", "中文 , 句子 . 好"),
        ("a—b", "a - b"),
        ("x．y", "x . y"),
        ("İstanbul", "istanbul"),
        ("ẞ STRASSE", "ß strasse"),
        ("ΟΔΟΣ ΟΔΟΣ.", "οδος οδος ."),
        ("Σ ΑΣ ΑΣΑ", "σ ας ασα"),
        ("a\x00b\x7fc\x9fd", "abcd"),  # C0/C1 controls vanish inside a word
        ("a\tb", "ab"),  # so does a tab: CCNet strips the line, then drops \t as non-printing
        ("a\u200bb \ufeffc", "a\u200bb \ufeffc"),  # ZWSP and BOM are Cf, kept by CCNet
        ("a\u00a0b\u3000c", "a b c"),  # non-ASCII spaces split
        ("I ❤ NY 🎉!", "i ❤ ny 🎉 !"),
        ("한국어", unicodedata.normalize("NFD", "한국어")),
    ],
)
def test_hand_cases(text, want):
    assert one(text) == want
    check([text])


def test_lines_and_documents():
    docs = ["First line.\nSecond, line\r\n\r\nThird\rFourth", "", " \n ", "only"]
    assert ccnet_lines(pa.array(docs), True) == [
        (0, "first line .", 3), (0, "second , line", 3), (0, "third", 1), (0, "fourth", 1), (3, "only", 1)
    ]
    assert ccnet_lines(pa.array(docs), False) == [
        (0, "first line . second , line third fourth", 8), (1, "", 0), (2, "", 0), (3, "only", 1)
    ]
    check(docs)


def test_normalise_only():
    # tokenize=False: CCNet's normalize(line) as it is (inner spaces, spaces from the punctuation
    # map, spaces next to controls that strip() stopped at), for the lines that have a token
    docs = [" Héllo,  Wörld—ok \x00 \n\t\n \x00\u0301 \r2nd\u3000LINE\x85 ", "\x00 \x00", "\u2000a\u2001b\u2001", "\t\x00 x"]
    assert ccnet_lines(pa.array(docs), True, False) == [
        (0, "hello,  world - ok ", 5), (0, "0nd\u3000line", 2), (2, "a\u2003b", 2), (3, " x", 1)
    ]
    assert ccnet_lines(pa.array(docs), False, False) == [
        (0, "hello,  world - ok  0nd\u3000line", 7), (1, "", 0), (2, "a\u2003b", 2), (3, " x", 1)
    ]
    check(docs)


def test_empty_array_and_nulls():
    assert ccnet_lines(pa.array([], pa.string()), True) == []
    assert ccnet_lines(pa.array([], pa.large_string()), False) == []
    # the caller fills nulls with ""; a null slot with valid offsets reads as empty anyway
    assert ccnet_lines(pa.array(["A b", None, "c"]), False) == [(0, "a b", 2), (1, "", 0), (2, "c", 1)]


def test_sliced_array():
    docs = [f"Doc {i}: Wörds, and ÀÇ {i}!\nline two" for i in range(20)]
    for t in BOTH:
        arr = pa.array(docs, t).slice(7, 9)
        assert arr.offset == 7
        for per_line in (True, False):
            assert ccnet_lines(arr, per_line) == reference(docs[7:16])[per_line, True]


def test_big_document_without_spaces():
    doc = ("Abc,Dé" * 200_000)[:1_000_000]
    check([doc, "x"])
    doc = "é" * 500_000 + "한" * 10_000
    check([doc])


def test_final_sigma_and_context():
    cases = [
        "ΑΣ", "ΑΣ.", "Α.Σ", "Α'Σ'", "ΑΣ'Α", "Α\u0301Σ", "Σ\u0301Α", "ΑΣ\u00adΒ", "1Σ", "ΑΣ1",
        "ΑΣ\nΒ", "Α\nΣ", "ΑΣ\rΒ", "Α\u200bΣ", "ΑΣ\x00", "Α\x00Σ", "ʰΣ", "ΣΣΣ", "ΑΣΣ Σ", "ΌΣΟΣ",
    ]
    check(cases)
    assert one("ΑΣ\nΒ") == "ας β"


def test_combining_marks_order():
    # U+1D16D (ccc 226) before U+1D165 (ccc 216): NFD swaps them; Mn in between do not stop it
    cases = ["\U0001d158\U0001d16d\U0001d165", "a\U0001d16d\u0301\U0001d165x", "\U0001d15f\U0001d16d\U0001d165",
             "a\u302e\u1b44", "a\u302e\u0301b\u1b44", "\u302e\u1b44 \u1b44\u302e",
             "x" + "\U0001d16d\U0001d165\u0301\u302e\U0001d172" * 2000 + "\u0300y"]
    check(cases)
    # a long run stays linear (Python's own NFD is quadratic here)
    n = 200_000
    assert one("\U0001d16d\U0001d165" * n) == "\U0001d165" * n + "\U0001d16d" * n


def test_invalid_utf8_does_not_crash():
    data = pa.py_buffer(b"ok \xff\xc3 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 end\xce")
    offsets = np.array([0, len(data)], np.int32)
    text, offs, doc, ntok = _tokenize.ccnet_lines(offsets, data, False, False)
    words = text.decode().split(" ")  # each malformed byte is one U+FFFD (a symbol: its own token)
    assert words[0] == "ok" and words[-2] == "end" and set("".join(words[1:-2] + words[-1:])) == {"\ufffd"}
    assert np.frombuffer(ntok, np.int64).tolist() == [len(words)]


def test_bad_offsets():
    with pytest.raises(ValueError):
        _tokenize.ccnet_lines(np.array([0, 10], np.int32), pa.py_buffer(b"abc"), False, True)
    with pytest.raises(ValueError):
        _tokenize.ccnet_lines(np.array([2, 1], np.int64), pa.py_buffer(b"abc"), True, True)


# ---- sample corpus ----


def sample_docs() -> list[str]:
    files = sorted(glob.glob(str(ROOT / "data/sample/raw/docs-*.jsonl.gz")))
    if not files:
        pytest.skip("no sample corpus (make sample)")
    docs = []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            docs += [json.loads(line)["text"] for line in fh if line.strip()]
    return docs


def test_sample_corpus():
    docs = sample_docs()
    assert len(docs) > 100
    check(docs)


# ---- generated text ----

INTERESTING = (
    "aAzZ09 .,;:'\"!?-_()[]{}<>«»“”„’…—–，。、：！（）％１٣१ΣσςΑΑΌἈ\u0301\u0308\u0345\u00ad\u200b\ufeff"
    "\x00\t\x0b\x0c\x1c\x7f\x85\x9f\xa0\u2028\u3000İıẞßǅﬁ한\u1100\u1161\U0001d165\U0001d16d\u302e\u1b44ʰ·"
)
lines_st = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
        st.text(st.sampled_from(INTERESTING), max_size=30),
        st.sampled_from(["\n", "\r\n", "\r", " ", "  "]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines_st, max_size=6))
def test_generated(docs):
    check(docs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(min_codepoint=0x80, blacklist_categories=("Cs",)), max_size=50), max_size=5))
def test_generated_non_ascii(docs):
    check(docs)


def test_every_code_point_alone():
    # each code point between two letters and alone: the per-code-point tables, exhaustively
    cps = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    docs = ["".join(cps[i : i + 256]) for i in range(0, len(cps), 256)]
    docs += ["x" + "x".join(cps[i : i + 256]) + "x" for i in range(0, len(cps), 256)]
    check(docs, types=(pa.large_string(),))


BENCH = ROOT / "scripts/bench/data/dup-100MB-s0/parquet/part-00000.parquet"


@pytest.mark.skipif(not BENCH.exists(), reason="no bench corpus")
def test_bench_corpus(capsys):
    import time

    import pyarrow.parquet as pq

    arr = pq.read_table(BENCH, columns=["text"]).column("text").combine_chunks()
    check(arr.slice(0, 300).to_pylist())
    offsets, data, wide = buffers(arr)
    start = time.perf_counter()
    _tokenize.ccnet_lines(offsets, data, wide, True)
    mb = (int(offsets[-1]) - int(offsets[0])) / 1e6
    with capsys.disabled():
        print(f"\nccnet_lines: {mb:.0f} MB at {mb / (time.perf_counter() - start):.0f} MB/s")
