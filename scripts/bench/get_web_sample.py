#!/usr/bin/env python3
"""Cache a second corpus for the quality-signal checks, one not tuned on, in
scripts/bench/data/web-sample/part-00000.parquet (git-ignored; never commit).

By default: the first N documents of allenai/c4's en.noclean validation shard (CommonCrawl text before
any C4 filtering), streamed and cut off after N. Where huggingface.co cannot be reached (this
workplace's machines), --local gathers real human-written English text that is on every machine
instead: the README/NEWS/changelog/copyright files under /usr/share/doc and the README, docs and
license files of the installed Python packages (one document per file, at most 200 kB each).

    .venv/bin/python scripts/bench/get_web_sample.py --docs 5000
    .venv/bin/python scripts/bench/get_web_sample.py --local --docs 5000
"""

from __future__ import annotations

import argparse
import gzip
import json
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

URL = "https://huggingface.co/datasets/allenai/c4/resolve/main/en.noclean/c4-validation.00000-of-01024.json.gz"
OUT = Path(__file__).resolve().parent / "data" / "web-sample"


def local_docs(limit: int):
    """Text files on this machine, in a sorted (reproducible) order."""
    import sys
    import sysconfig

    roots = [Path("/usr/share/doc"), Path(sysconfig.get_paths()["purelib"])]
    seen = 0
    for root in roots:
        for p in sorted(root.rglob("*")):
            name = p.name.lower()
            if not p.is_file() or p.stat().st_size < 200 or p.stat().st_size > 200_000:
                continue
            if not (name.endswith((".md", ".rst", ".txt")) or name.startswith(("readme", "news", "changelog", "copyright"))):
                continue
            if name.endswith(".gz"):
                continue
            try:
                text = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            yield str(p), text
            seen += 1
            if seen >= limit:
                return
    print(f"only {seen} local documents", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--url", default=URL)
    ap.add_argument("--local", action="store_true", help="text files on this machine instead of the download")
    args = ap.parse_args()
    dest = OUT / "part-00000.parquet"
    if dest.exists() and pq.read_metadata(dest).num_rows >= args.docs:
        print(f"cached: {dest}")
        return
    rows = {"id": [], "text": [], "url": []}
    if args.local:
        for i, (path, text) in enumerate(local_docs(args.docs)):
            rows["id"].append(f"local-{i}")
            rows["text"].append(text)
            rows["url"].append(path)
        args.url = "local text files"
    else:
        _download(args.url, args.docs, rows)
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    pq.write_table(pa.table(rows), tmp)
    tmp.replace(dest)
    print(f"wrote {dest}: {len(rows['text'])} documents from {args.url}")


def _download(url, docs, rows):
    with urllib.request.urlopen(url, timeout=60) as resp, gzip.open(resp, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= docs:
                break
            d = json.loads(line)
            rows["id"].append(f"c4-noclean-val0-{i}")
            rows["text"].append(d["text"])
            rows["url"].append(d.get("url"))


if __name__ == "__main__":
    main()
