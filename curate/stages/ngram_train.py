"""curate ngram train: estimate a Kneser-Ney n-gram model with KenLM's lmplz and convert it to a
binary model with build_binary.

The tokenised text streams from the dataset straight into lmplz's stdin, one line per sentence
(a line of a document): no temporary copy of the corpus is written. lmplz's ARPA output and its
sort files live in a hidden folder beside MODEL, removed at the end. MODEL.json, the training
manifest, records the corpus digest, the order, the tokeniser and the n-gram counts; `curate score`
reads it to refuse a model trained with another tokeniser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curate import __version__, log
from curate.errors import CurateError, InputError, UsageError
from curate.io.dataset import (
    check_text_column,
    open_dataset,
    open_stdin_stream,
    reference_schema,
    stream_manifest,
)
from curate.io.manifest import digest
from curate.io.parquet import iter_batches
from curate.run.proc import imports_done, tune_malloc
from curate.run.progress import Reporter
from curate.score.lm import kenlm_tool, manifest_path
from curate.text.arrow import hash128
from curate.text.tokenize import Tokenizer


@dataclass(frozen=True)
class TrainParams:
    order: int = 4
    sample: float = 1.0  # fraction of documents, chosen by a seeded hash of their id
    seed: int = 0
    memory: str = "50%"  # lmplz -S
    prune: tuple[int, ...] = ()  # lmplz --prune: count thresholds per order
    tokenizer: str = "ccnet"


def lmplz_memory(value: str | None) -> str:
    """--memory for lmplz -S: '50%', or a size such as 4G (passed in MiB)."""
    if value is None:
        return "50%"
    v = value.strip()
    if re.fullmatch(r"\d{1,2}(\.\d+)?%|100%", v):
        return v
    from curate.stages.dedup_common import parse_memory

    return f"{max(parse_memory(v) >> 20, 1)}M"


def parse_prune(value: str | None, order: int) -> tuple[int, ...]:
    if not value:
        return ()
    parts = value.replace(",", " ").split()
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= order:
        raise UsageError(f"--prune {value!r}: expected up to {order} counts, e.g. '0 0 1' (unigrams are never pruned)")
    ints = tuple(int(p) for p in parts)
    if ints[0] != 0 or any(b < a for a, b in zip(ints, ints[1:], strict=False)):
        raise UsageError(f"--prune {value!r}: the first count must be 0 and counts must not decrease (lmplz's rule)")
    return ints


def _batches(dataset):
    """(batch, input bytes) over a dataset's shards in order, or the stdin stream."""
    if dataset.stdin:
        reader = open_stdin_stream()
        check_text_column(reader.schema, "stdin")
        yield stream_manifest(reader.schema), None
        for b in reader:
            yield b, b.nbytes
        return
    check_text_column(reference_schema(dataset), dataset.shards[0].loc.uri)
    for shard in dataset.shards:
        from curate.io.parquet import open_parquet

        pf = open_parquet(shard.loc)
        total = max(pf.metadata.num_rows, 1)
        for b in iter_batches(shard.loc, pf=pf, columns=["id", "text"] if "id" in pf.schema_arrow.names else ["text"]):
            yield b, int(shard.size * b.num_rows / total)


def _sampled(batch, sample: float, seed: int):
    if sample >= 1.0:
        return batch
    key = batch.column("id") if "id" in batch.schema.names else batch.column("text")
    h = hash128(key, seed=seed)[:, 0]
    import pyarrow as pa

    return batch.filter(pa.array(h < np.uint64(int(sample * 2.0**64) if sample < 1 else 2**64 - 1)))


def _newline_joined(lines) -> bytes:
    """The lines' UTF-8 with a newline after each, built without a Python loop."""
    bufs = lines.text.buffers()
    offs = np.frombuffer(bufs[1], np.int64)[lines.text.offset: lines.text.offset + len(lines.text) + 1]
    if len(offs) < 2:
        return b""
    data = np.frombuffer(bufs[2], np.uint8)[offs[0]: offs[-1]]
    return np.insert(data, offs[1:] - offs[0], np.uint8(10)).tobytes()


def _counts(arpa: Path) -> dict[str, int]:
    counts = {}
    with open(arpa, "rb") as f:
        for raw in f:
            line = raw.strip()
            if line.startswith(b"ngram "):
                k, _, v = line[6:].partition(b"=")
                counts[k.decode()] = int(v)
            elif line.startswith(b"\\1-grams"):
                break
    return counts


def _tail(path: Path, n: int = 8) -> str:
    try:
        return "\n    ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


def train(uri: str, model: str, params: TrainParams, progress: str = "auto", overwrite: bool = False) -> dict:
    """Train, convert, publish MODEL and MODEL.json; returns the manifest."""
    imports_done()
    tune_malloc()
    t0 = time.monotonic()
    out = Path(model)
    if out.is_dir():
        raise UsageError(f"MODEL {model} is a directory", hint="name the model file, e.g. models/web.4gram.bin")
    if out.exists() and not overwrite:
        raise CurateError("the model file already exists", where=str(out), hint="pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    lmplz, build_binary = kenlm_tool("lmplz"), kenlm_tool("build_binary")
    dataset = open_dataset(uri)
    tok = Tokenizer(params.tokenizer)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    arpa, binary, err_log = tmp / "model.arpa", tmp / "model.bin", tmp / "lmplz.log"
    cmd = [lmplz, "-o", str(params.order), "-S", params.memory, "-T", str(tmp), "--discount_fallback", "--skip_symbols"]
    if params.prune:
        cmd += ["--prune", *map(str, params.prune)]
    stats = {"documents_read": 0, "documents_used": 0, "lines": 0, "tokens": 0}
    input_manifest = dataset.manifest
    reporter = Reporter(f"ngram train ({params.order}-gram)", 1, dataset.total_bytes, progress)
    try:
        with open(arpa, "wb") as arpa_f, open(err_log, "wb") as err_f:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=arpa_f, stderr=err_f)
            try:
                for batch, nbytes in _batches(dataset):
                    if nbytes is None:  # stdin: the stream's lineage comes first
                        input_manifest = batch
                        continue
                    stats["documents_read"] += batch.num_rows
                    batch = _sampled(batch, params.sample, params.seed)
                    lines = tok.lines(batch.column("text"), per_line=True)
                    stats["documents_used"] += batch.num_rows
                    stats["lines"] += len(lines.text)
                    stats["tokens"] += int(lines.ntok.sum())
                    proc.stdin.write(_newline_joined(lines))
                    reporter.advance(batch.num_rows, nbytes)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # lmplz died: its log says why, below
            except BaseException:
                proc.kill()
                raise
            rc = proc.wait()
        reporter.task_done()
        if stats["tokens"] == 0:
            raise InputError("no tokens to train on (every document is empty after tokenisation)", where=uri)
        if rc != 0:
            raise CurateError(f"lmplz failed (exit {rc}):\n    {_tail(err_log)}", where=str(out),
                              hint="a corpus too small for this order needs more text or a lower --order; "
                                   "'memory' errors need a larger --memory")
        r = subprocess.run([build_binary, str(arpa), str(binary)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise CurateError(f"build_binary failed (exit {r.returncode}): {r.stderr.decode(errors='replace')[-500:]}",
                              where=str(out))
        manifest = {
            "curate_version": __version__,
            "kind": "kenlm",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "corpus": uri,
            "corpus_digest": digest(input_manifest) if input_manifest is not None else
            digest({"files": [[s.name, s.size] for s in dataset.shards]}),
            "params": {**asdict(params), "prune": list(params.prune)},
            "tokenizer": {"spec": tok.spec, **tok.identity()},
            "unit": "line",
            "ngrams": _counts(arpa),
            **stats,
            "lmplz": [Path(cmd[0]).name, *cmd[1:5], "-T", "TMP", *cmd[7:]],
            "model_bytes": binary.stat().st_size,
            "seconds": round(time.monotonic() - t0, 3),
        }
        from curate.io.atomic import write_bytes_atomic
        from curate.io.location import locate

        write_bytes_atomic(locate(str(manifest_path(out))), json.dumps(manifest, indent=1, sort_keys=True).encode())
        os.replace(binary, out)  # the model appears whole or not at all
        return manifest
    finally:
        reporter.close()
        shutil.rmtree(tmp, ignore_errors=True)


def describe(manifest: dict) -> str:
    n = manifest.get("ngrams", {})
    grams = ", ".join(f"{k}-grams {v:,}" for k, v in sorted(n.items(), key=lambda kv: int(kv[0])))
    return (f"{manifest['documents_used']:,} documents, {manifest['lines']:,} lines, {manifest['tokens']:,} tokens; "
            f"{grams}; {log.human_bytes(manifest['model_bytes'])}")
