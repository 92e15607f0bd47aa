#!/usr/bin/env python3
"""Agreement of `curate score --signals` + `filter --preset configs/X.toml` with datatrove 0.10.1's filters.

For each document, datatrove's GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter and
FineWebQualityFilter (defaults, English) decide keep/drop; curate decides with the signal columns and
the preset's rules (the same compiled rules `curate filter` runs). Prints the agreement per filter and
the disagreeing documents. Needs datatrove and spaCy (the dev extra, or the peers' venv).

    .venv/bin/python scripts/bench/datatrove_signals.py data/sample/raw/*.jsonl.gz
    .venv/bin/python scripts/bench/datatrove_signals.py scripts/bench/data/web-sample/*.parquet --show 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PRESETS = {"gopher": "gopher.toml", "gopher-repetition": "gopher-repetition.toml", "c4": "c4.toml", "fineweb": "fineweb.toml"}


def read_texts(paths, limit=None) -> list[str]:
    texts: list[str] = []
    for p in paths:
        if p.endswith(".parquet"):
            texts.extend(pq.read_table(p, columns=["text"]).column("text").to_pylist())
        else:
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rt", encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
        if limit and len(texts) >= limit:
            return texts[:limit]
    return texts


def datatrove_decisions(texts: list[str]) -> dict[str, list[bool]]:
    """Each filter's keep/drop, run as a datatrove pipeline runs them: one document at a time."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = {"gopher": GopherQualityFilter(), "gopher-repetition": GopherRepetitionFilter(),
               "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter()}
    out: dict[str, list[bool]] = {k: [] for k in filters}
    for i, t in enumerate(texts):
        for name, f in filters.items():
            out[name].append(f.filter(Document(text=t, id=str(i))) is True)
    return out


def curate_decisions(texts: list[str]) -> dict[str, list[bool]]:
    from curate.filter.rules import Program, load_preset
    from curate.score.signals import SETS, SignalsScorer

    cols = SignalsScorer(tuple(SETS)).score(pa.array(texts, pa.large_string()))
    batch = pa.RecordBatch.from_pydict(cols)
    out = {}
    for name, preset in PRESETS.items():
        prog = Program(load_preset(str(ROOT / "configs" / preset)), batch.schema)
        fails, nulls = prog.evaluate(batch)
        out[name] = (~fails.any(axis=0)).tolist()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="JSONL(.gz) with a text field, or Parquet with a text column")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--show", type=int, default=3, help="disagreements to print per filter")
    args = ap.parse_args()
    texts = read_texts(args.paths, args.limit)
    dt, cu = datatrove_decisions(texts), curate_decisions(texts)
    report = {}
    for name in PRESETS:
        diff = [i for i, (a, b) in enumerate(zip(dt[name], cu[name], strict=True)) if a != b]
        report[name] = {"docs": len(texts), "agree": 1 - len(diff) / max(len(texts), 1), "disagree": len(diff),
                        "datatrove_kept": sum(dt[name]), "curate_kept": sum(cu[name])}
        for i in diff[:args.show]:
            print(f"{name}: doc {i} datatrove {'keep' if dt[name][i] else 'drop'}: {texts[i][:200]!r}", file=sys.stderr)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
