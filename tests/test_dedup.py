"""curate dedup exact | paragraphs | minhash, on the sample corpus and on small handmade datasets,
through the real CLI: what is removed, what is kept in its place, and that the output does not
depend on the worker count, the memory budget (spilling), --task slicing or a kill -9.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.stages.dedup_minhash import jaccard, shingle_set
from tests.conftest import SAMPLE, curate_proc, run, shard_bytes

TRUTH = [json.loads(line) for line in (SAMPLE / "truth.jsonl").read_text().splitlines() if line.strip()]
EXACT_PAIRS = [(t["original"], t["doc_id"]) for t in TRUTH if t["kind"] == "exact"]
NEAR_PAIRS = [(t["original"], t["doc_id"]) for t in TRUTH if t["kind"] == "near"]
SAMPLE_ROWS = 2539


# ---- helpers -------------------------------------------------------------------------------


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def rows_of(path: Path) -> list[dict]:
    """The rows of a dataset's shards in shard order (read_rows would also read _clusters.parquet)."""
    out = []
    for f in sorted(path.glob("part-*.parquet")):
        out.extend(pq.read_table(f).to_pylist())
    return out


def ids(path: Path) -> list[str]:
    return [r["id"] for r in rows_of(path)]


def snapshot(out: Path) -> dict[str, bytes]:
    """The bytes a reader sees: the shards, and the clusters file where there is one."""
    snap = shard_bytes(out)
    if (out / "_clusters.parquet").exists():
        snap["_clusters.parquet"] = (out / "_clusters.parquet").read_bytes()
    return snap


def tree_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def ingest_docs(tmp: Path, name: str, docs: list[dict], shard_size: int = 1000) -> Path:
    """A small dataset made the way users make one: JSON Lines through `curate ingest`."""
    src = tmp / f"{name}.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp / name
    ok("ingest", src, out, "--id-field", "id", "--shard-size", shard_size, "-j", "1", "-q")
    return out


def plain_dataset(path: Path, shards: list[list[dict]], id_column: bool = True) -> Path:
    """Parquet files written directly (no manifest): how empty texts and empty shards get in."""
    schema = pa.schema(([("id", pa.string())] if id_column else []) + [("text", pa.string())])
    path.mkdir()
    for i, rows in enumerate(shards):
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path / f"part-{i:05d}.parquet")
    return path


def position(dataset: Path) -> dict[str, int]:
    """id -> index in shard order (the order `--keep first` follows)."""
    return {i: k for k, i in enumerate(ids(dataset))}


def dedup(kind: str, inp: Path, out: Path, *opts) -> Path:
    ok("dedup", kind, inp, out, "-q", *opts)
    return out


def clusters(out: Path) -> list[dict]:
    return pq.read_table(out / "_clusters.parquet").to_pylist()


# ---- exact ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exact_run(sample_dataset, tmp_path_factory):
    d = tmp_path_factory.mktemp("exact")
    out, rej = d / "out", d / "rej"
    ok("dedup", "exact", sample_dataset, out, "--rejects", rej, "-j", "1", "-q")
    return out, rej


def test_exact_removes_one_member_of_each_injected_copy(sample_dataset, exact_run):
    out, rej = exact_run
    kept, rejected = set(ids(out)), rows_of(rej)
    gone = {r["id"] for r in rejected}
    assert len(rejected) == len(EXACT_PAIRS) == 115
    pos = position(sample_dataset)
    for a, b in EXACT_PAIRS:
        assert (a in gone) != (b in gone), (a, b)
        first, later = sorted((a, b), key=pos.__getitem__)
        assert first in kept and later in gone  # --keep first: the earlier document stays
    for a, b in NEAR_PAIRS:  # near copies are not exact copies
        assert a in kept and b in kept
    partner = {b: a for a, b in EXACT_PAIRS} | {a: b for a, b in EXACT_PAIRS}
    for r in rejected:
        assert r["reject_reason"] == "exact_duplicate"
        assert r["dup_of"] == partner[r["id"]] and r["dup_of"] in kept
    assert kept | gone == set(ids(sample_dataset)) and not kept & gone


def test_exact_clusters_file_and_accounting(exact_run):
    out, rej = exact_run
    cl = clusters(out)
    assert len(cl) == 2 * len(EXACT_PAIRS)
    by_id = {c["id"]: c for c in cl}
    kept = set(ids(out))
    for a, b in EXACT_PAIRS:
        assert by_id[a]["cluster"] == by_id[b]["cluster"] in (a, b)
        assert by_id[a]["cluster"] in kept
        assert by_id[a]["cluster_size"] == by_id[b]["cluster_size"] == 2
    m = manifest(out)
    t = m["totals"]
    assert t["rows_in"] == SAMPLE_ROWS == t["rows_out"] + t["rows_rejected"]
    assert t["rows_out"] == len(kept) == SAMPLE_ROWS - 115 and t["rows_rejected"] == len(rows_of(rej))
    assert m["counters"]["exact_duplicate"] == 115
    assert sum(s["rows_in"] for s in m["shards"]) == SAMPLE_ROWS
    assert not (out / "_work").exists()


def test_exact_normalize_modes(tmp_path):
    docs = [
        {"id": "a", "text": "Hello, World! It is 42 degrees."},
        {"id": "b", "text": "hello world it is 17 degrees"},
        {"id": "c", "text": "HELLO -- WORLD... it is 99 DEGREES!"},
        {"id": "d", "text": "Hello,   World!\tIt is 42\n degrees."},
        {"id": "e", "text": "Hello, World! It is 42 degrees."},
        {"id": "f", "text": "Goodbye, World! It is 42 degrees."},
        {"id": "g", "text": "CAFÉ — ５ euros!"},
        {"id": "h", "text": "café 7 euros"},
    ]
    ds = ingest_docs(tmp_path, "ds", docs)
    simple = dedup("exact", ds, tmp_path / "simple", "--normalize", "simple", "-j", "1")
    assert ids(simple) == ["a", "f", "g"]
    assert {c["id"]: c["cluster"] for c in clusters(simple)} == {k: "a" for k in "abcde"} | {"g": "g", "h": "g"}
    ws = dedup("exact", ds, tmp_path / "ws", "-j", "1")  # the default: whitespace runs collapsed
    assert ids(ws) == ["a", "b", "c", "f", "g", "h"]
    none = dedup("exact", ds, tmp_path / "none", "--normalize", "none", "-j", "1")
    assert ids(none) == ["a", "b", "c", "d", "f", "g", "h"]


@pytest.mark.parametrize("keep, winner", [
    ("first", "a"),
    ("longest", "c"),
    ("max:score", "b"),
    ("min:score", "d"),
    ("max:year", "a"),  # ties (a, c) go to the earlier document; a null never wins
    ("min:flag", "b"),
])
def test_exact_keep_policies(tmp_path, keep, winner):
    docs = [
        {"id": "a", "text": "The same words", "score": 0.5, "year": 2020, "flag": True},
        {"id": "x", "text": "something else", "score": 9.0, "year": 2030, "flag": False},
        {"id": "b", "text": "the same words!", "score": 3.5, "year": None, "flag": False},
        {"id": "c", "text": "THE SAME WORDS ...", "score": 1.0, "year": 2020, "flag": True},
        {"id": "d", "text": "the same, words", "score": -2.0, "year": 1999, "flag": True},
    ]
    ds = ingest_docs(tmp_path, "ds", docs, shard_size=2)
    rej = tmp_path / "rej"
    out = dedup("exact", ds, tmp_path / "out", "--normalize", "simple", "--keep", keep, "--rejects", rej, "-j", "1")
    assert sorted(ids(out)) == sorted([winner, "x"])
    assert {r["dup_of"] for r in rows_of(rej)} == {winner}
    assert sorted(ids(rej)) == sorted(set("abcd") - {winner})


@pytest.mark.parametrize("keep", ["max:nosuch", "min:text", "biggest", "max:"])
def test_exact_bad_keep_is_a_clean_error(sample_dataset, tmp_path, keep):
    r = run("dedup", "exact", sample_dataset, tmp_path / "out", "--keep", keep, "-j", "1", "-q")
    assert r.exit_code in (1, 2), r.output
    assert "Traceback" not in r.output and "--keep" in r.stderr
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_exact_punctuation_empty_and_one_word_documents(tmp_path):
    ds = plain_dataset(tmp_path / "ds", [[
        {"id": "p1", "text": "!!!"},
        {"id": "q1", "text": "???"},
        {"id": "p2", "text": "!!!"},
        {"id": "e1", "text": ""},
        {"id": "w1", "text": "Word"},
        {"id": "e2", "text": ""},
        {"id": "w2", "text": "word."},
        {"id": "w3", "text": "words"},
        {"id": "q2", "text": "?!?"},
    ]])
    rej = tmp_path / "rej"
    out = dedup("exact", ds, tmp_path / "out", "--normalize", "simple", "--rejects", rej, "-j", "1")
    assert ids(out) == ["p1", "q1", "e1", "w1", "w3", "q2"]
    assert {r["id"]: r["dup_of"] for r in rows_of(rej)} == {"p2": "p1", "e2": "e1", "w2": "w1"}


# ---- annotate ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, opts", [("exact", ()), ("minhash", ("--verify",))])
def test_annotate_marks_every_row_consistently_with_drop(sample_dataset, tmp_path, kind, opts):
    rej = tmp_path / "rej"
    drop = dedup(kind, sample_dataset, tmp_path / "drop", "--rejects", rej, "-j", "1", *opts)
    ann = dedup(kind, sample_dataset, tmp_path / "ann", "--mode", "annotate", "-j", "1", *opts)
    rows, src = rows_of(ann), rows_of(sample_dataset)
    assert len(rows) == SAMPLE_ROWS
    assert [{k: v for k, v in r.items() if k not in ("dup_cluster", "dup_count")} for r in rows] == src
    assert pq.read_schema(ann / "part-00000.parquet").names == list(src[0]) + ["dup_cluster", "dup_count"]
    dup_of = {r["id"]: r["dup_of"] for r in rows_of(rej)}
    kept = set(ids(drop))
    size = {c["id"]: c["cluster_size"] for c in clusters(drop)}
    for r in rows:
        if r["dup_cluster"] is None:
            assert r["dup_count"] == 1 and r["id"] in kept and r["id"] not in size
        elif r["dup_cluster"] == r["id"]:  # the document kept for its cluster
            assert r["id"] in kept and r["dup_count"] == size[r["id"]] >= 2
        else:
            assert dup_of[r["id"]] == r["dup_cluster"] and r["dup_count"] == size[r["id"]]
    removed = {r["id"] for r in rows if r["dup_cluster"] not in (None, r["id"])}
    assert removed == set(dup_of)
    m = manifest(ann)
    assert m["totals"]["rows_out"] == SAMPLE_ROWS and m["totals"]["rows_rejected"] == 0


# ---- paragraphs ----------------------------------------------------------------------------

COOKIE = "Cookie policy: we use cookies."
PARA_DOCS = [
    {"id": "d0", "text": f"Intro of zero.\n{COOKIE}\nBody of zero."},
    {"id": "d1", "text": f"First line of one.\n{COOKIE}\nThe end of one."},
    {"id": "d2", "text": "Nothing here is shared.\r\nNot even  this   line.\n"},
    {"id": "d3", "text": "COOKIE POLICY - we use cookies!\n   \nthe END of one"},
    {"id": "d4", "text": f"{COOKIE}\nok"},
    {"id": "d5", "text": f"Repeat me.\nRepeat me.\n{COOKIE}\nTail of five.\n"},
    {"id": "d6", "text": "Intro of zero!"},
]


@pytest.fixture(scope="module")
def para_ds(tmp_path_factory):
    return ingest_docs(tmp_path_factory.mktemp("para"), "ds", PARA_DOCS, shard_size=2)


def test_paragraphs_keep_first_occurrence_only(para_ds, tmp_path):
    rej = tmp_path / "rej"
    out = dedup("paragraphs", para_ds, tmp_path / "out", "--rejects", rej, "-j", "1")
    got = {r["id"]: r["text"] for r in rows_of(out)}
    assert got == {
        "d0": PARA_DOCS[0]["text"],  # the first occurrence (by shard order) stays
        "d1": "First line of one.\nThe end of one.",
        "d2": PARA_DOCS[2]["text"],  # nothing removed: byte-identical
        "d4": "ok",
        "d5": "Repeat me.\nTail of five.\n",
    }
    rejected = rows_of(rej)
    assert [(r["id"], r["reject_reason"]) for r in rejected] == [("d3", "paragraph_duplicate"), ("d6", "paragraph_duplicate")]
    assert [r["text"] for r in rejected] == [PARA_DOCS[3]["text"], PARA_DOCS[6]["text"]]  # as they came in
    m = manifest(out)
    assert m["totals"] == m["totals"] | {"rows_in": 7, "rows_out": 5, "rows_rejected": 2}
    assert len(list(out.glob("part-*.parquet"))) == 4


def test_paragraphs_min_chars_rejects_short_leftovers(para_ds, tmp_path):
    rej = tmp_path / "rej"
    out = dedup("paragraphs", para_ds, tmp_path / "out", "--min-chars", "10", "--rejects", rej, "-j", "1")
    assert ids(out) == ["d0", "d1", "d2", "d5"]
    assert {r["id"]: r["text"] for r in rows_of(rej)}["d4"] == PARA_DOCS[4]["text"]  # left with "ok": too short


def test_paragraphs_annotate_counts_without_changing_text(para_ds, tmp_path):
    out = dedup("paragraphs", para_ds, tmp_path / "out", "--mode", "annotate", "-j", "1")
    rows = rows_of(out)
    assert [r["text"] for r in rows] == [d["text"] for d in PARA_DOCS]
    assert {r["id"]: r["dup_units"] for r in rows} == {"d0": 0, "d1": 1, "d2": 0, "d3": 2, "d4": 1, "d5": 2, "d6": 1}
    assert {r["id"]: r["dup_chars"] for r in rows}["d5"] == len("Repeat me.") + len(COOKIE)
    assert manifest(out)["totals"]["rows_rejected"] == 0


def test_paragraphs_unit_paragraph_splits_on_blank_lines(tmp_path):
    footer = "Subscribe to our newsletter.\nFollow us on the web."
    docs = [
        {"id": "a", "text": f"Story A begins.\nIt goes on.\n\n{footer}"},
        {"id": "b", "text": f"Story B.\n\n{footer}\n\nStory B ends."},
        {"id": "c", "text": "Story C.\nFollow us on the web."},  # one line of the footer: not a paragraph of it
        {"id": "d", "text": f"Story D.\n \n{footer}"},
    ]
    ds = ingest_docs(tmp_path, "ds", docs)
    out = dedup("paragraphs", ds, tmp_path / "out", "--unit", "paragraph", "-j", "1")
    assert {r["id"]: r["text"] for r in rows_of(out)} == {
        "a": docs[0]["text"], "b": "Story B.\n\nStory B ends.", "c": docs[2]["text"], "d": "Story D.",
    }
    lines = dedup("paragraphs", ds, tmp_path / "lines", "-j", "1")
    assert {r["id"]: r["text"] for r in rows_of(lines)}["c"] == "Story C."


def test_paragraphs_blank_lines_never_count_whatever_the_normalisation(tmp_path):
    ds = plain_dataset(tmp_path / "ds", [[
        {"id": "a", "text": "First document.\n    \n\t\nEnd of a."},
        {"id": "b", "text": "Second document.\n    \n\t\nEnd of b."},
        {"id": "c", "text": "Second document.\n    \nEnd of c."},
    ]])
    for norm in ("none", "whitespace", "simple"):
        out = dedup("paragraphs", ds, tmp_path / norm, "--normalize", norm, "-j", "1")
        got = {r["id"]: r["text"] for r in rows_of(out)}
        assert got == {"a": "First document.\n    \n\t\nEnd of a.", "b": "Second document.\n    \n\t\nEnd of b.",
                       "c": "    \nEnd of c."}, norm


def test_paragraphs_large_string_text(tmp_path):
    """Parquet written by other tools may hold the text as large_string."""
    ds = tmp_path / "ds"
    ds.mkdir()
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": pa.array(
        ["Header line.\nBody a.", "Header line.\nBody b.", "Header line."], pa.large_string())}), ds / "part-00000.parquet")
    out = dedup("paragraphs", ds, tmp_path / "out", "-j", "1")
    assert {r["id"]: r["text"] for r in rows_of(out)} == {"a": "Header line.\nBody a.", "b": "Body b."}
    assert pq.read_schema(out / "part-00000.parquet").field("text").type == pa.large_string()


def _brute_force_lines(docs: list[dict]) -> dict[str, str]:
    """CCNet line dedup the slow way: normalise (lower-case, punctuation to space, digits to 0,
    whitespace collapsed), keep a line's first occurrence, reject documents left blank."""
    import re

    def norm(line):
        return " ".join(re.sub(r"[^\w\s]|_", " ", re.sub(r"\d", "0", line.lower())).split())

    seen, out = set(), {}
    for d in docs:
        keep, touched = [], False
        for line in d["text"].split("\n"):
            n = norm(line)
            if n and n in seen:
                touched = True
                continue
            seen.add(n)
            keep.append(line)
        text = "\n".join(keep) if touched else d["text"]
        if text.strip():
            out[d["id"]] = text
    return out


def test_exact_and_paragraphs_match_brute_force_across_batches_and_row_groups(tmp_path):
    """Shards larger than a read batch (2048 rows) and split in row groups: document numbers
    must line up between the signature and apply phases."""
    import random

    rng = random.Random(7)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    lines = [" ".join(rng.choices(words, k=3)) + rng.choice([".", "!", ""]) for _ in range(300)]
    shards, k = [], 0
    for n in (2200, 0, 5, 900):
        rows = []
        for _ in range(n):
            text = "\n".join(rng.choices(lines, k=rng.randint(1, 3)))
            rows.append({"id": f"d{k}", "text": text.upper() if rng.random() < 0.2 else text})
            k += 1
        shards.append(rows)
    ds = tmp_path / "ds"
    ds.mkdir()
    for i, rows in enumerate(shards):
        t = pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.string()), ("text", pa.string())]))
        pq.write_table(t, ds / f"part-{i:05d}.parquet", row_group_size=700)
    docs = [d for rows in shards for d in rows]

    first = {}
    for d in docs:
        first.setdefault(" ".join(d["text"].split()), d["id"])
    out = dedup("exact", ds, tmp_path / "exact", "-j", "1")
    assert ids(out) == sorted(first.values(), key=lambda i: int(i[1:]))

    out = dedup("paragraphs", ds, tmp_path / "lines", "-j", "1")
    assert {r["id"]: r["text"] for r in rows_of(out)} == _brute_force_lines(docs)


# ---- input checks --------------------------------------------------------------------------


def test_annotating_twice_is_a_clean_error(sample_dataset, tmp_path):
    ann = dedup("exact", sample_dataset, tmp_path / "ann", "--mode", "annotate", "-j", "1")
    r = run("dedup", "minhash", ann, tmp_path / "again", "--mode", "annotate", "-j", "1", "-q")
    assert r.exit_code == 1, r.output
    assert "dup_cluster" in r.stderr and "Traceback" not in r.output
    # dropping by near duplicates keeps the exact marks as they are
    out = dedup("minhash", ann, tmp_path / "near", "-j", "1")
    names = pq.read_schema(out / "part-00000.parquet").names
    assert names.count("dup_cluster") == 1 and names.count("dup_count") == 1


@pytest.mark.parametrize("kind", ["exact", "minhash"])
def test_missing_id_column_is_a_clean_error(tmp_path, kind):
    ds = plain_dataset(tmp_path / "ds", [[{"text": "same words here"}, {"text": "same words here"}]], id_column=False)
    r = run("dedup", kind, ds, tmp_path / "out", "-j", "1", "-q")
    assert r.exit_code == 1, r.output
    assert "'id'" in r.stderr and "Traceback" not in r.output
    assert run("dedup", "paragraphs", ds, tmp_path / "lines", "-j", "1", "-q").exit_code == 0  # needs no ids


# ---- minhash -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minhash_verified(sample_dataset, tmp_path_factory):
    d = tmp_path_factory.mktemp("minhash")
    out, rej = d / "out", d / "rej"
    ok("dedup", "minhash", sample_dataset, out, "--verify", "--rejects", rej, "-j", "1", "-q")
    return out, rej


def _texts(dataset: Path) -> dict[str, str]:
    return {r["id"]: r["text"] for r in rows_of(dataset)}


def _check_precision(rejected: list[dict], texts: dict[str, str], kept: set[str], char_ngrams=None) -> None:
    partners = {}
    for a, b in EXACT_PAIRS + NEAR_PAIRS:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    for r in rejected:
        assert r["reject_reason"] == "near_duplicate" and r["dup_of"] in kept
        if r["id"] in partners:
            continue
        j = jaccard(shingle_set(texts[r["id"]], 5, char_ngrams), shingle_set(texts[r["dup_of"]], 5, char_ngrams))
        assert j >= 0.7, (r["id"], r["dup_of"], j)


def _recall(gone: set[str], pairs) -> float:
    return sum(a in gone or b in gone for a, b in pairs) / len(pairs)


def test_minhash_verify_recall_and_precision(sample_dataset, minhash_verified):
    out, rej = minhash_verified
    rejected, kept = rows_of(rej), set(ids(out))
    gone = {r["id"] for r in rejected}
    assert _recall(gone, EXACT_PAIRS + NEAR_PAIRS) >= 0.95
    assert _recall(gone, EXACT_PAIRS) == 1.0
    _check_precision(rejected, _texts(sample_dataset), kept)
    m = manifest(out)
    assert m["totals"]["rows_out"] + m["totals"]["rows_rejected"] == SAMPLE_ROWS == m["totals"]["rows_in"]
    assert m["phases"]["verify"]["counters"]["pairs_checked"] >= m["phases"]["verify"]["counters"]["pairs_confirmed"] > 0
    assert {c["id"] for c in clusters(out)} >= gone


def test_minhash_verifies_by_default(sample_dataset, minhash_verified, tmp_path):
    out = dedup("minhash", sample_dataset, tmp_path / "out", "-j", "1")
    m = manifest(out)
    assert m["params"]["verify"] is True and (m["params"]["lsh_bands"], m["params"]["lsh_rows"]) == (16, 8)
    assert snapshot(out) == snapshot(minhash_verified[0])


def test_minhash_unverified_banding_keeps_precision(sample_dataset, tmp_path):
    rej = tmp_path / "rej"
    out = dedup("minhash", sample_dataset, tmp_path / "out", "--no-verify", "--rejects", rej, "-j", "1")
    m = manifest(out)
    assert m["params"]["verify"] is False and (m["params"]["lsh_bands"], m["params"]["lsh_rows"]) == (9, 13)
    rejected = rows_of(rej)
    _check_precision(rejected, _texts(sample_dataset), set(ids(out)))
    assert _recall({r["id"] for r in rejected}, EXACT_PAIRS) == 1.0


def test_minhash_char_ngrams(sample_dataset, tmp_path):
    rej = tmp_path / "rej"
    out = dedup("minhash", sample_dataset, tmp_path / "out", "--char-ngrams", "5", "--verify", "--rejects", rej, "-j", "1")
    assert manifest(out)["params"]["char_ngrams"] == 5
    rejected = rows_of(rej)
    gone = {r["id"] for r in rejected}
    assert _recall(gone, EXACT_PAIRS) == 1.0 and _recall(gone, NEAR_PAIRS) >= 0.9
    _check_precision(rejected, _texts(sample_dataset), set(ids(out)), char_ngrams=5)


@pytest.mark.parametrize("opts", [
    ("--bands", "20", "--rows", "10", "--num-perm", "128"),
    ("--bands", "9"),
    ("--rows", "13"),
])
def test_minhash_bad_banding_is_a_usage_error(sample_dataset, tmp_path, opts):
    r = run("dedup", "minhash", sample_dataset, tmp_path / "out", *opts, "-j", "1", "-q")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "--bands" in r.stderr
    assert not (tmp_path / "out").exists()


def test_minhash_empty_and_one_word_documents(tmp_path):
    ds = plain_dataset(tmp_path / "ds", [[
        {"id": "p1", "text": "!!!"},
        {"id": "p2", "text": "!!!"},
        {"id": "q1", "text": "?? -- ??"},
        {"id": "e1", "text": ""},
        {"id": "e2", "text": "   "},
        {"id": "w1", "text": "Hello"},
        {"id": "w2", "text": "hello!"},
        {"id": "w3", "text": "(HELLO)"},
        {"id": "x1", "text": "goodbye"},
    ]])
    rej = tmp_path / "rej"
    out = dedup("minhash", ds, tmp_path / "out", "--rejects", rej, "-j", "1")
    assert ids(out) == ["p1", "p2", "q1", "e1", "e2", "w1", "x1"]
    assert {r["id"]: r["dup_of"] for r in rows_of(rej)} == {"w2": "w1", "w3": "w1"}
    assert manifest(out)["phases"]["signature"]["counters"]["no_shingles"] == 5


# ---- the same output however it is run -----------------------------------------------------

STAGES = {
    "exact": ("exact", ()),
    "paragraphs": ("paragraphs", ()),
    "minhash": ("minhash", ("--verify",)),
}


@pytest.fixture(scope="module")
def long_docs(sample_dataset, tmp_path_factory):
    """The sample's texts joined ten at a time: 254 documents of ~180 lines in 10 shards. With
    more lines per document than paragraphs' sizing assumes, a tiny --memory makes it spill."""
    texts = [r["text"] for r in rows_of(sample_dataset)]
    docs = [{"id": f"long{k:04d}", "text": "\n".join(texts[i : i + 10])} for k, i in enumerate(range(0, len(texts), 10))]
    return ingest_docs(tmp_path_factory.mktemp("long"), "ds", docs, shard_size=26)


def _spilled(out: Path) -> int:
    return sum(ph["counters"].get("spilled_partitions", 0) for ph in manifest(out)["phases"].values())


def _run_slices(kind: str, inp: Path, out: Path, opts) -> int:
    """--task 0/2 and 1/2 in turn until the dataset is complete; returns the number of calls."""
    for k in range(12):
        r = ok("dedup", kind, inp, out, "--task", f"{k % 2}/2", "-j", "1", "-q", "--json", *opts)
        done = json.loads(r.stdout)["complete"]
        assert done == (out / "_SUCCESS").exists()
        if done:
            return k + 1
    raise AssertionError("--task slices never completed the dataset")


@pytest.mark.parametrize("stage", list(STAGES))
def test_output_independent_of_workers_memory_and_task_slices(sample_dataset, long_docs, tmp_path, stage):
    kind, opts = STAGES[stage]
    inp = long_docs if kind == "paragraphs" else sample_dataset
    before = tree_bytes(inp)
    ref = dedup(kind, inp, tmp_path / "ref", "-j", "1", *opts)
    assert _spilled(ref) == 0
    assert len(manifest(ref)["shards"]) == 10
    counters = manifest(ref)["counters"]
    assert counters.get("units_removed", 0) + counters.get(f"{kind}_duplicate", 0) + counters.get("near_duplicate", 0) > 100
    want = snapshot(ref)
    assert len(want) == 10 + (kind != "paragraphs")

    two = dedup(kind, inp, tmp_path / "j2", "-j", "2", *opts)
    assert snapshot(two) == want

    small = dedup(kind, inp, tmp_path / "small", "-j", "1", "--memory", "64K", *opts)
    assert _spilled(small) > 0
    assert snapshot(small) == want
    if kind == "minhash":  # the same candidate pairs, however they were partitioned
        assert manifest(small)["phases"]["verify"]["counters"] == manifest(ref)["phases"]["verify"]["counters"]

    one = run("dedup", kind, inp, tmp_path / "one", "-j", "2", "-q", *opts, env={"CURATE_POOL_MIN_BYTES": str(1 << 40)})
    assert one.exit_code == 0, one.output
    assert manifest(tmp_path / "one")["phases"]["edges" if kind == "minhash" else "group"]["tasks"] == 1
    assert snapshot(tmp_path / "one") == want  # a small input: one process, one partition, the same bytes

    calls = _run_slices(kind, inp, tmp_path / "sliced", opts)
    assert calls > 2  # a global stage stops after each phase until every slice of it is done
    assert snapshot(tmp_path / "sliced") == want
    assert manifest(tmp_path / "sliced")["totals"] == manifest(ref)["totals"]

    assert tree_bytes(inp) == before  # curate never modifies its input


@pytest.mark.parametrize("stage", list(STAGES))
def test_one_cluster_too_big_for_memory(tmp_path, stage):
    """Hundreds of copies of one text under the smallest --memory: a group that no split can make
    smaller is streamed, and still keeps its first document."""
    kind, opts = STAGES[stage]
    boiler = "Same boilerplate text in every one of these documents.\nWith a second line, too."

    def unique(s, i):  # letters, not digits: simple normalisation turns every digit into 0
        return "Unique document " + " ".join("abcdefghij"[int(c)] * 3 for c in f"{s}{i:03d}") + " here."

    shards = [[{"id": f"s{s}d{i}", "text": boiler if i % 10 else unique(s, i)} for i in range(300)] for s in range(2)]
    ds = plain_dataset(tmp_path / "ds", shards)
    ref = dedup(kind, ds, tmp_path / "ref", "-j", "1", *opts)
    small = dedup(kind, ds, tmp_path / "small", "-j", "1", "--memory", "16K", *opts)
    assert _spilled(small) > 0 and _spilled(ref) == 0
    assert snapshot(small) == snapshot(ref)
    kept = ids(small)
    assert "s0d1" in kept and len(kept) == 60 + 1


@pytest.mark.parametrize("stage", list(STAGES))
def test_empty_input_shard_gives_an_empty_output_shard(tmp_path, stage):
    kind, opts = STAGES[stage]
    a = [{"id": "a1", "text": "One fish two fish red fish blue fish.\nShared line here."},
         {"id": "a2", "text": "Another document, with words of its own."}]
    c = [{"id": "c1", "text": "One fish two fish red fish blue fish.\nShared line here."},
         {"id": "c2", "text": "A third document that says nothing new."}]
    ds = plain_dataset(tmp_path / "ds", [a, [], c])
    before = tree_bytes(ds)
    out = dedup(kind, ds, tmp_path / "out", "-j", "1", *opts)
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-{i:05d}.parquet" for i in range(3)]
    empty = pq.read_table(out / "part-00001.parquet")
    assert empty.num_rows == 0 and empty.schema == pq.read_schema(out / "part-00000.parquet")
    got = {r["id"]: r["text"] for r in rows_of(out)}
    if kind == "paragraphs":
        assert got == {"a1": a[0]["text"], "a2": a[1]["text"], "c2": c[1]["text"]}  # c1 is all duplicate lines
    else:
        assert set(got) == {"a1", "a2", "c2"}
    assert manifest(out)["totals"] | {"rows_in": 4} == manifest(out)["totals"]
    assert [s["rows_in"] for s in manifest(out)["shards"]] == [2, 0, 2]
    assert tree_bytes(ds) == before


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_minhash_kill9_then_resume_gives_identical_output(sample_raw, tmp_path):
    ds = tmp_path / "ds"  # many small shards, so that there is a middle to kill it in
    ok("ingest", sample_raw, ds, "--id-field", "doc_id", "--shard-size", "20", "-j", "1", "-q")
    nshards = len(list(ds.glob("part-*.parquet")))
    assert nshards > 100
    before = tree_bytes(ds)
    ref = dedup("minhash", ds, tmp_path / "ref", "-j", "1")

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "curate", "dedup", "minhash", str(ds), str(out), "-j", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    done = out / "_work" / "done" / "apply"
    t0 = time.time()
    # past signature, edges and components, part-way through apply: some shards are published
    while not (done.exists() and len(list(done.glob("*.json"))) >= nshards // 3):
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()}"
        assert time.time() - t0 < 60, "no progress"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists()
    assert any(out.glob("part-*.parquet"))

    r = curate_proc("dedup", "minhash", ds, out, "-j", "1")
    assert r.returncode == 0, r.stderr.decode()
    assert "resuming" in r.stderr.decode()
    assert snapshot(out) == snapshot(ref)
    assert not any(p.name.startswith(".") for p in out.iterdir()), "temporary files left behind"
    assert not (out / "_work").exists()
    assert tree_bytes(ds) == before


def test_minhash_components_on_disk_when_memory_is_tiny(sample_dataset, minhash_verified, tmp_path):
    # 32K cannot hold 3 x 8 bytes per document: the union-find arrays become memory-mapped files,
    # and the output must not change.
    out = dedup("minhash", sample_dataset, tmp_path / "o", "--verify", "--memory", "32K", "-j", "1", "--keep-work")
    assert manifest(out)["phases"]["components"]["counters"]["memory_mapped_arrays"] >= 2
    assert (out / "_work" / "components" / "parent.bin").exists()
    assert snapshot(out) == snapshot(minhash_verified[0])


@pytest.mark.parametrize("num_perm", [64, 128, 256])
@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_optimal_bands_match_datasketch(num_perm, threshold):
    from datasketch.lsh import _optimal_param

    from curate.stages.dedup_minhash import optimal_bands

    for weights in ((0.5, 0.5), (0.05, 0.95)):
        assert optimal_bands(threshold, num_perm, *weights) == _optimal_param(threshold, num_perm, *weights)


SIG_SCRIPT = """
import hashlib, sys, pyarrow as pa
from curate.stages.dedup_minhash import signatures
texts = pa.array(sys.stdin.read().split("\\x1e"))
for nperm in (128, 100, 7):
    sig, cnt = signatures(texts, 5, None, nperm)
    print(hashlib.sha256(sig.tobytes() + cnt.tobytes()).hexdigest())
"""


def test_minhash_signatures_equal_the_formula_on_every_cpu_path():
    """Every SIMD path (AVX2, SSE4.1, scalar) gives the integers of the formula, for permutation
    counts that are and are not multiples of the vector width."""
    import gzip
    import hashlib

    import numpy as np

    from curate.stages.dedup_minhash import permutations, signatures

    with gzip.open(SAMPLE / "raw" / "docs-00.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for line, _ in zip(f, range(300), strict=False)]
    assert len(texts) == 300
    texts += ["", "one", "!!! ...", "a b c d e f g"]
    expected = []
    for nperm in (128, 100, 7):
        a, b = permutations(nperm)
        sig, cnt = signatures(pa.array(texts), 5, None, nperm)
        for i, t in enumerate(texts):
            h = shingle_set(t, 5, None)
            assert cnt[i] >= len(h)
            want = ((a[:, None] * h[None, :] + b[:, None]) >> np.uint64(32)).astype(np.uint32).min(axis=1) if len(h) else np.full(nperm, 0xFFFFFFFF, np.uint32)
            assert (sig[i] == want).all(), (nperm, i)
        expected.append(hashlib.sha256(sig.tobytes() + cnt.tobytes()).hexdigest())
    for level in ("avx2", "sse4.1", "scalar"):
        env = {**__import__("os").environ, "CURATE_SIMD": level}
        out = subprocess.run([sys.executable, "-c", SIG_SCRIPT], input="\x1e".join(texts), env=env, capture_output=True, text=True, check=True).stdout.split()
        assert out == expected, level
