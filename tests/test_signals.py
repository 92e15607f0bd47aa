"""Heuristic quality signals (curate score --signals): values on hand-made documents with known answers,
keep/drop agreement with datatrove 0.10.1's filters (run live) on a fixture of real text, and the
command line end to end.

The fixture, tests/fixtures/signals/docs.jsonl.gz, holds 320 real documents under 4000 characters:
CPython docstrings from data/sample and text files installed on a Debian machine (READMEs, changelogs,
copyright files, package docs); `source` says which."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.score.signals import COLUMNS, SETS, SignalsScorer, parse_sets

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "signals" / "docs.jsonl.gz"
ALL = tuple(SETS)


def signals(*texts, sets=ALL):
    cols = SignalsScorer(sets).score(pa.array(list(texts), pa.large_string()))
    return [{k: v[i].as_py() for k, v in cols.items()} for i in range(len(texts))]


def one(text, sets=ALL):
    return signals(text, sets=sets)[0]


def fixture_texts():
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


# -- hand-made documents ---------------------------------------------------------------------------

def test_empty_text():
    s = one("")
    assert s["gopher_n_words"] == 0 and s["gopher_stop_words"] == 0
    for k in ("gopher_mean_word_length", "gopher_hash_ratio", "gopher_ellipsis_ratio", "gopher_bullet_lines_ratio",
              "gopher_ellipsis_lines_ratio", "gopher_alpha_words_ratio"):
        assert s[k] is None, k
    # datatrove drops an empty document in both filters: null signals fail every rule
    assert all(s[k] is None for k in s if k.startswith(("gopher_repetition_", "fineweb_")))
    assert (s["c4_lorem_ipsum_lines"], s["c4_curly_bracket_lines"], s["c4_sentences"], s["c4_kept_lines"]) == (0, 0, 0, 0)


def test_one_word():
    s = one("hello")
    assert s["gopher_n_words"] == 1 and s["gopher_mean_word_length"] == 5.0
    assert s["gopher_hash_ratio"] == 0.0 and s["gopher_alpha_words_ratio"] == 1.0
    assert s["gopher_bullet_lines_ratio"] == 0.0 and s["gopher_stop_words"] == 0
    assert all(s[k] == 0.0 for k in s if k.startswith("gopher_repetition_"))
    assert s["c4_sentences"] == 0 and s["c4_kept_lines"] == 0  # no terminal punctuation, under 3 words
    assert (s["fineweb_line_punct_ratio"], s["fineweb_short_line_ratio"], s["fineweb_char_dup_ratio"],
            s["fineweb_list_ratio"]) == (0.0, 1.0, 0.0, 0.0)


def test_only_punctuation():
    s = one("!!! ... ???")
    # spaCy splits "!!!" into three tokens and keeps "..." whole: 7 words, none of them a non-symbol word
    assert s["gopher_n_words"] == 0 and s["gopher_mean_word_length"] is None
    assert s["gopher_ellipsis_ratio"] == 1 / 7 and s["gopher_alpha_words_ratio"] == 0.0
    assert s["gopher_ellipsis_lines_ratio"] == 0.0  # the line ends with '?'
    assert s["fineweb_line_punct_ratio"] == 1.0
    assert s["fineweb_list_ratio"] == 0.0


def test_only_newlines():
    s = one("\n\n\n")
    assert s["gopher_n_words"] == 0 and s["gopher_hash_ratio"] is None
    assert s["gopher_bullet_lines_ratio"] == 0.0  # three empty lines
    # paragraphs of "".strip(): one empty one; lines of re.split("\n+"): two empty ones, one a duplicate
    assert s["gopher_repetition_dup_para_frac"] == 0.0
    assert s["gopher_repetition_dup_line_frac"] == 0.5 and s["gopher_repetition_dup_line_char_frac"] == 0.0
    assert s["c4_sentences"] == 0
    assert all(s[k] is None for k in s if k.startswith("fineweb_"))  # no non-blank line: datatrove drops it


def test_one_megabyte_without_spaces():
    text = "a" * 1_000_000
    s = one(text)
    assert s["gopher_n_words"] == 1 and s["gopher_mean_word_length"] == 1e6
    assert s["c4_kept_lines"] == 0  # a word over 1000 characters drops the line
    assert s["fineweb_short_line_ratio"] == 0.0 and s["fineweb_list_ratio"] == 0.0
    # affix stripping on a long run stays linear: a million brackets
    s = one("(" * 1_000_000)
    assert s["gopher_n_words"] == 0 and s["gopher_alpha_words_ratio"] == 0.0


def test_mixed_scripts():
    text = "Привет мир! 你好世界。 Hello world."
    s = one(text)
    # words: Привет мир ! 你好世界 。 Hello world . (CJK and Cyrillic letters are alphabetic)
    assert s["gopher_n_words"] == 5 and s["gopher_mean_word_length"] == (6 + 3 + 4 + 5 + 5) / 5
    assert s["gopher_alpha_words_ratio"] == 5 / 8
    assert s["c4_sentences"] == 3 and s["c4_kept_lines"] == 1  # '!' and '。' end sentences
    assert s["fineweb_line_punct_ratio"] == 1.0 and s["fineweb_short_line_ratio"] == float(len(text) <= 30)


def test_gopher_counts():
    text = "# The cat... is\n- with the dog…\n• and be the one\nplain line"
    s = one(text)
    assert s["gopher_stop_words"] == 4  # the, with, and, be ("The" is not "the")
    assert s["gopher_bullet_lines_ratio"] == 2 / 4 and s["gopher_ellipsis_lines_ratio"] == 1 / 4
    words = 17  # # The cat ... is - with the dog … • and be the one plain line
    assert s["gopher_hash_ratio"] == 1 / words and s["gopher_ellipsis_ratio"] == 2 / words


def test_repetition_values():
    s = one("a b a b a b")  # 11 characters
    assert s["gopher_repetition_top_2_gram_char_frac"] == 9 / 11  # "a b" x 3
    assert s["gopher_repetition_top_3_gram_char_frac"] == 10 / 11  # "a b a" x 2, first of a tie
    assert s["gopher_repetition_top_4_gram_char_frac"] == 14 / 11  # overlapping, as datatrove counts them
    assert s["gopher_repetition_dup_5_gram_char_frac"] == 0.0
    s = one("x\nx\ny")
    assert s["gopher_repetition_dup_line_frac"] == 1 / 3 and s["gopher_repetition_dup_line_char_frac"] == 1 / 5
    s = one("p\n\np\n\nq")
    assert s["gopher_repetition_dup_para_frac"] == 1 / 3 and s["gopher_repetition_dup_para_char_frac"] == 1 / 7
    # duplicated 5-grams: the second "one two three four five" counts its 19 characters (joined without spaces)
    s = one("one two three four five one two three four five")
    assert s["gopher_repetition_dup_5_gram_char_frac"] == 19 / 47


def test_c4_line_rules():
    good = "This is a sentence. It has two."
    s = one("\n".join([good] * 3))
    assert s["c4_sentences"] == 6 and s["c4_kept_lines"] == 3
    s = one(good + "\nLorem ipsum dolor sit amet.\n")
    assert s["c4_lorem_ipsum_lines"] == 1
    s = one(good + "\nfunction f() { return 1; } ok.")
    assert s["c4_curly_bracket_lines"] == 1
    s = one("No terminal punctuation here\nToo short.\nEnable JavaScript to see this page.\n"
            "Read our privacy policy today.\nA citation follows here [1].\nAnd then... more...")
    # only the citation line survives ("...", few words, javascript and policy lines are removed)
    assert s["c4_kept_lines"] == 1 and s["c4_sentences"] == 1 and s["c4_curly_bracket_lines"] == 0


def test_fineweb_values():
    text = "A short line.\nA short line.\n\nanother, much longer line without a stop"
    s = one(text)
    assert s["fineweb_line_punct_ratio"] == 2 / 3 and s["fineweb_short_line_ratio"] == 2 / 3
    assert s["fineweb_char_dup_ratio"] == 13 / (len(text) - 3)
    # 3 newlines / 14 words (A short line . x2, another , much longer line without a stop)
    assert s["fineweb_list_ratio"] == 3 / 16


def test_sets_and_nulls():
    cols = SignalsScorer(("c4",)).score(pa.array(["x.", None], pa.string()))
    assert set(cols) == {n for n, _, s in COLUMNS if s == "c4"}
    assert cols["c4_sentences"].to_pylist() == [0, None]
    assert parse_sets("fineweb, gopher") == ("gopher", "fineweb")
    from curate.errors import UsageError

    with pytest.raises(UsageError):
        parse_sets("gopher,nope")


def test_sliced_and_chunked_input():
    texts = ["one two three.", "", "x " * 50, None, "Hello, world!"]
    arr = pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])
    whole = SignalsScorer(ALL).score(arr)
    part = SignalsScorer(ALL).score(pa.array(texts, pa.string()).slice(2))
    for k in whole:
        assert whole[k].slice(2).to_pylist() == part[k].to_pylist(), k


# -- agreement with datatrove, run live ----------------------------------------------------------------

def test_words_match_spacy_on_hand_cases():
    pytest.importorskip("spacy")
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from curate import _signals

    tok = load_word_tokenizer("en")
    for text in ["Mr. Smith doesn't like U.S. e.g. this.", "see www.example.com/a/b or foo-bar and 5km.",
                 "(hello) [world]! \"quoted,\" 'single' it's 3.5% +5 1-2 a/b c:d", "end.Next sentence...ok",
                 "Привет мир! 你好世界。 Hello world.", "!!! ... ???", "e-mail: a@b.com; $10, US$5, 10°C."]:
        assert _signals.words(text) == tok.word_tokenize(text), text


def test_words_match_spacy_on_fixture():
    pytest.importorskip("spacy")
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from curate import _signals

    tok = load_word_tokenizer("en")
    differ = [i for i, t in enumerate(fixture_texts()) if _signals.words(t) != tok.word_tokenize(t)]
    assert differ == []


def test_sentences_match_spacy():
    pytest.importorskip("spacy")
    from datatrove.utils.text import split_into_sentences

    from curate import _signals

    lines = [ln.strip() for t in fixture_texts()[:150] for ln in t.splitlines() if len(ln.split()) >= 3]
    assert len(lines) > 300
    for ln in lines:
        assert _signals.sentences(ln) == len(split_into_sentences(ln)), ln


def test_decisions_agree_with_datatrove():
    pytest.importorskip("datatrove")
    pytest.importorskip("spacy")
    import sys

    sys.path.insert(0, str(ROOT / "scripts" / "bench"))
    from datatrove_signals import curate_decisions, datatrove_decisions

    texts = fixture_texts()
    assert len(texts) >= 300
    dt, cu = datatrove_decisions(texts), curate_decisions(texts)
    for name in dt:
        agree = sum(a == b for a, b in zip(dt[name], cu[name], strict=True)) / len(texts)
        assert agree >= 0.995, (name, agree)
        assert 0 < sum(dt[name]) < len(texts), name  # the fixture has documents on both sides of each filter


# -- the command line ------------------------------------------------------------------------------------

def test_cli_score_then_filter_preset(tmp_path):
    texts = fixture_texts()[:120]
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), src / "part-00000.parquet")
    r = CliRunner().invoke(cli, ["score", str(src), str(tmp_path / "scored"), "--signals", "gopher,c4,fineweb,gopher-repetition",
                                 "-q", "--json"])
    assert r.exit_code == 0, r.output
    scored = pq.read_table(tmp_path / "scored")
    assert scored.num_rows == len(texts)
    assert [n for n in scored.column_names if n not in ("id", "text")] == [n for n, _, _ in COLUMNS]
    expect = signals(*texts)
    got = scored.to_pylist()
    for e, g in zip(expect, got, strict=True):
        for k, v in e.items():
            assert (v is None and g[k] is None) or v == g[k] or (isinstance(v, float) and math.isclose(v, g[k])), k
    for preset in ("gopher", "gopher-repetition", "c4", "fineweb"):
        out = tmp_path / f"kept-{preset}"
        r = CliRunner().invoke(cli, ["filter", str(tmp_path / "scored"), str(out), "--preset",
                                     str(ROOT / "configs" / f"{preset}.toml"), "-q", "--json"])
        assert r.exit_code == 0, r.output
        summary = json.loads(r.output.strip().splitlines()[-1])
        assert summary["rows_in"] == len(texts) if "rows_in" in summary else True


def test_cli_bad_signal_set(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"text": ["x"]}), src / "part-00000.parquet")
    r = CliRunner().invoke(cli, ["score", str(src), str(tmp_path / "o"), "--signals", "gopher,bogus"])
    assert r.exit_code != 0 and "bogus" in r.output and "Traceback" not in r.output
