"""curate ngram train and curate score with real KenLM models (lmplz + build_binary built by
scripts/build_kenlm.sh), on the sample corpus and on handmade datasets."""

from __future__ import annotations

import json
import math
import random
import subprocess
from pathlib import Path

import kenlm
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.text.tokenize import Tokenizer
from tests.conftest import read_rows, run, shard_bytes


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


def write_dataset(path: Path, texts: list[str], shards: int = 2) -> Path:
    path.mkdir(parents=True)
    per = -(-len(texts) // shards)
    for s in range(shards):
        chunk = texts[s * per:(s + 1) * per]
        ids = [f"d{s * per + i}" for i in range(len(chunk))]
        pq.write_table(pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(chunk, pa.string())}),
                       path / f"part-{s:05d}.parquet")
    return path


def toks(text: str, per_line: bool = True) -> list[str]:
    return Tokenizer().lines(pa.array([text]), per_line=per_line).text.to_pylist()


@pytest.fixture(scope="module")
def sample_model(sample_dataset, tmp_path_factory):
    """A 4-gram model of the sample corpus plus one document repeated 50 times."""
    d = tmp_path_factory.mktemp("ngram")
    rows = read_rows(sample_dataset)
    rng = random.Random(7)
    repeated = rows[1234]["text"]
    texts = [r["text"] for r in rows] + [repeated] * 50
    rng.shuffle(texts)
    ds = write_dataset(d / "corpus", texts, shards=3)
    model = d / "m.bin"
    ok("ngram", "train", ds, model, "--order", "4", "-q", "--memory", "200M")
    return ds, model, repeated


def test_train_writes_a_binary_model_and_its_manifest(sample_model):
    ds, model, _ = sample_model
    m = json.loads(Path(str(model) + ".json").read_text())
    assert m["params"]["order"] == 4 and m["tokenizer"]["name"] == "ccnet" and m["unit"] == "line"
    assert m["documents_used"] == m["documents_read"] == 2539 + 50
    assert set(m["ngrams"]) == {"1", "2", "3", "4"} and all(v > 0 for v in m["ngrams"].values())
    assert m["model_bytes"] == model.stat().st_size
    assert kenlm.Model(str(model)).order == 4
    assert not list(model.parent.glob(".m.bin.tmp-*"))  # lmplz's temporary files are gone
    # tokens counted by curate are what lmplz saw: its unigram count includes <s>, </s>, <unk>
    lines = [ln for t in pq.read_table(ds).column("text").to_pylist() for ln in toks(t)]
    assert m["lines"] == len(lines) and m["tokens"] == sum(len(ln.split()) for ln in lines)
    assert m["ngrams"]["1"] == len({w for ln in lines for w in ln.split()}) + 3


def test_ppl_equals_kenlm_perplexity_and_the_ccnet_formula(sample_model, tmp_path):
    _, model, _ = sample_model
    texts = ["The cat sat on the mat.", "Line one here.\nAnd a second line, with 42 numbers!\n\n  third  ",
             "", "   \n\t ", "!!!", "word", "Éléphant ÉCOLE naïve café"]
    ds = write_dataset(tmp_path / "in", texts, shards=1)
    ok("score", ds, tmp_path / "out", "--kenlm", model, "-j", "1", "-q")
    rows = read_rows(tmp_path / "out")
    lm = kenlm.Model(str(model))
    for t, r in zip(texts, rows, strict=True):
        lines = toks(t)
        assert r["n_tokens"] == sum(len(x.split()) for x in lines)
        if not lines:
            assert r["ppl"] is None  # null, never NaN
            continue
        if len(lines) == 1:
            assert math.isclose(r["ppl"], lm.perplexity(lines[0]), rel_tol=1e-6)
        total = sum(lm.score(x) for x in lines)
        assert math.isclose(r["ppl"], 10 ** (-total / sum(len(x.split()) + 1 for x in lines)), rel_tol=1e-9)
    assert math.isclose(rows[0]["ppl"], lm.perplexity("the cat sat on the mat ."), rel_tol=1e-6)


def test_commonness_of_a_document_repeated_50_times(sample_dataset, sample_model, tmp_path):
    ds, model, repeated = sample_model
    ok("score", ds, tmp_path / "out", "--commonness", model, "-j", "2", "-q")
    rows = read_rows(tmp_path / "out")
    by_text = {}
    for r in rows:
        by_text.setdefault(r["text"], []).append(r["commonness"])
    assert len(by_text[repeated]) == 51 and len(set(by_text[repeated])) == 1  # the original and 50 copies
    mine = by_text[repeated][0]
    # higher than its unique neighbours: the 20 documents around it in the sample (same module, same style)
    sample = [r["text"] for r in read_rows(sample_dataset)]
    k = sample.index(repeated)
    neighbours = [t for t in sample[k - 10:k + 11] if t != repeated and len(by_text[t]) == 1]
    assert len(neighbours) >= 15 and all(mine > by_text[t][0] for t in neighbours)
    # and far higher than the same document gets from a model of the corpus without its copies
    plain = tmp_path / "plain.bin"
    ok("ngram", "train", sample_dataset, plain, "--order", "4", "-q", "--memory", "200M")
    ok("score", sample_dataset, tmp_path / "plain", "--commonness", plain, "-j", "1", "-q")
    alone = next(r["commonness"] for r in read_rows(tmp_path / "plain") if r["text"] == repeated)
    assert mine > 1.5 * alone
    lm = kenlm.Model(str(model))
    lines = toks(repeated)  # scored line by line, the unit the model was trained on
    assert len(lines) > 3
    row = next(r for r in rows if r["text"] == repeated)
    total = sum(lm.score(x) for x in lines)
    assert math.isclose(row["logprob"], total, rel_tol=1e-9)
    assert math.isclose(mine, 10 ** (total / sum(len(x.split()) + 1 for x in lines)), rel_tol=1e-9)


def test_two_scorers_one_pass_and_any_worker_count(sample_model, tmp_path):
    ds, model, _ = sample_model
    ok("score", ds, tmp_path / "a", "--kenlm", model, "--commonness", model, "-j", "1", "-q")
    ok("score", ds, tmp_path / "b", "--kenlm", model, "--commonness", model, "-j", "2", "-q")
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    t = pq.read_table(tmp_path / "a" / "part-00000.parquet")
    assert t.column_names == ["id", "text", "ppl", "n_tokens", "commonness", "logprob"]
    # the same model and lines: commonness is 1 / ppl (SoftDedup's commonness is the self-model's perplexity, inverted)
    for p, c in zip(t.column("ppl").to_pylist(), t.column("commonness").to_pylist(), strict=True):
        assert (p is None) == (c is None) and (p is None or math.isclose(p * c, 1.0, rel_tol=1e-9))
    m = json.loads((tmp_path / "a" / "_manifest.json").read_text())
    assert [s["kind"] for s in m["params"]["scorers"]] == ["ppl", "commonness"]


def test_score_reads_stdin_and_writes_stdout(sample_model, tmp_path):
    ds, model, _ = sample_model
    one = tmp_path / "one"
    write_dataset(one, ["alpha beta gamma", "", "the the the"], shards=1)
    stream = subprocess.run([".venv/bin/curate", "score", str(one), "-", "--kenlm", str(model), "-q"],
                            capture_output=True, check=True, cwd=Path(__file__).parent.parent).stdout
    t = pa.ipc.open_stream(stream).read_all()
    assert t.column("n_tokens").to_pylist() == [3, 0, 3] and t.column("ppl").null_count == 1


def test_model_errors_are_clean(sample_model, tmp_path):
    ds, model, _ = sample_model
    out = tmp_path / "o"
    r = run("score", ds, out, "--kenlm", tmp_path / "missing.bin")
    assert r.exit_code == 1 and "model file not found" in r.output
    arpa = tmp_path / "m.arpa"
    arpa.write_text("\n\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\t<unk>\n\n\\end\\\n")
    r = run("score", ds, out, "--kenlm", arpa)
    assert r.exit_code == 1 and "ARPA" in r.output and "build_binary" in r.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00garbage" * 100)
    r = run("score", ds, out, "--kenlm", junk)
    assert r.exit_code == 1 and "not a KenLM binary model" in r.output
    cut = tmp_path / "cut.bin"
    cut.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    r = run("score", ds, out, "--kenlm", cut, "-j", "1")
    assert r.exit_code == 1 and "cannot load" in r.output and "Traceback" not in r.output
    r = run("score", ds, out)
    assert r.exit_code == 2 and "nothing to score" in r.output


def test_a_model_is_never_scored_with_another_tokenizer(sample_model, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    ds, model, _ = sample_model
    sp_model = tmp_path / "sp"
    texts = pq.read_table(ds).column("text").to_pylist()[:500]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_prefix=str(sp_model), vocab_size=300,
                                   minloglevel=2)
    r = run("score", ds, tmp_path / "o", "--kenlm", model, "--tokenizer", f"spm:{sp_model}.model")
    assert r.exit_code == 2 and "trained with tokeniser 'ccnet'" in r.output


@pytest.mark.parametrize("kind", ["spm", "hf"])
def test_user_tokenizers_train_and_score(sample_dataset, tmp_path, kind):
    texts = pq.read_table(sample_dataset).column("text").to_pylist()[:800]
    if kind == "spm":
        spm = pytest.importorskip("sentencepiece")
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_prefix=str(tmp_path / "sp"), vocab_size=400,
                                       minloglevel=2)
        spec = f"spm:{tmp_path / 'sp.model'}"
    else:
        tk = pytest.importorskip("tokenizers")
        tok = tk.Tokenizer(tk.models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
        tok.train_from_iterator(texts, tk.trainers.WordPieceTrainer(vocab_size=500, special_tokens=["[UNK]"]))
        tok.save(str(tmp_path / "tok.json"))
        spec = f"hf:{tmp_path / 'tok.json'}"
    ds = write_dataset(tmp_path / "in", texts, shards=2)
    model = tmp_path / "m.bin"
    ok("ngram", "train", ds, model, "--order", "3", "--tokenizer", spec, "-q", "--memory", "100M")
    assert json.loads(Path(str(model) + ".json").read_text())["tokenizer"]["name"] == kind
    ok("score", ds, tmp_path / "out", "--kenlm", model, "-j", "1", "-q")  # the manifest's tokeniser
    rows = read_rows(tmp_path / "out")
    lm = kenlm.Model(str(model))
    lines = Tokenizer(spec).lines(pa.array([rows[0]["text"]])).text.to_pylist()
    total = sum(lm.score(x) for x in lines)
    assert math.isclose(rows[0]["ppl"], 10 ** (-total / sum(len(x.split()) + 1 for x in lines)), rel_tol=1e-9)


def test_train_sample_is_seeded_and_errors_are_clean(sample_dataset, tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    ok("ngram", "train", sample_dataset, a, "--order", "3", "--sample", "0.5", "-q", "--memory", "100M")
    ok("ngram", "train", sample_dataset, b, "--order", "3", "--sample", "0.5", "-q", "--memory", "100M")
    ma, mb = (json.loads(Path(str(p) + ".json").read_text()) for p in (a, b))
    assert ma["documents_used"] == mb["documents_used"] and 1000 < ma["documents_used"] < 1550
    assert a.read_bytes() == b.read_bytes()
    r = run("ngram", "train", sample_dataset, a, "-q")
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = run("ngram", "train", sample_dataset, tmp_path / "c.bin", "--prune", "1 0")
    assert r.exit_code == 2 and "--prune" in r.output
    r = run("ngram", "train", sample_dataset, tmp_path / "c.bin", "-q", env={"CURATE_KENLM_BIN": str(tmp_path)})
    assert r.exit_code == 2 and "lmplz not found" in r.output and "CURATE_KENLM_BIN" in r.output
    empty = write_dataset(tmp_path / "empty", ["", "\n", "   "], shards=1)
    r = run("ngram", "train", empty, tmp_path / "e.bin", "-q")
    assert r.exit_code == 1 and "no tokens" in r.output


def test_scores_keep_their_types_in_shards_with_no_tokens(sample_model, tmp_path):
    """A shard of empty texts (or no rows) is typed like every other: downstream stages check that."""
    _, model, _ = sample_model
    ds = tmp_path / "ds"
    ds.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["alpha beta", "gamma"]}), ds / "part-00000.parquet")
    pq.write_table(pa.table({"id": ["c", "d"], "text": ["", "   "]}), ds / "part-00001.parquet")
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), ds / "part-00002.parquet")
    ok("score", ds, tmp_path / "s", "--commonness", model, "--kenlm", model, "-j", "1", "-q")
    types = {str(pq.read_schema(f).field(c).type) for f in (tmp_path / "s").glob("part-*.parquet")
             for c in ("commonness", "logprob", "ppl")}
    assert types == {"double"}
    ok("filter", tmp_path / "s", tmp_path / "f", "--where", "logprob is null or logprob < 0", "-q")
