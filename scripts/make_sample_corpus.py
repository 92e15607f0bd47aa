#!/usr/bin/env python3
"""Build the small, deterministic sample corpus used by `curate`.

The text is real prose that ships with every CPython (PSF licence): the
docstrings of the standard library's own modules, classes and functions
(read with ``ast``; nothing is imported) plus the interactive help topics
in ``pydoc_data/topics.py``.  A seeded fraction of the documents is copied
verbatim ("exact") or with a few word edits ("near") so deduplication can
be scored against ``truth.jsonl``.

Layout of the output directory::

    raw/docs-00.jsonl.gz .. raw/docs-03.jsonl.gz   gzip, mtime=0
    raw/docs-04.jsonl                              plain JSON lines
    truth.jsonl                                    one line per injected copy
    stats.json                                     counts and build parameters

Each record is ``{"doc_id", "text", "domain", "source"}``; the id field is
deliberately ``doc_id`` rather than ``id``.

Usage examples::

    python3 scripts/make_sample_corpus.py                 # -> data/sample
    python3 scripts/make_sample_corpus.py --out /tmp/sample --seed 1
    python3 scripts/make_sample_corpus.py --exact-rate 0.1 --near-rate 0 --force

The build is cached: if the output directory already holds a ``stats.json``
made with the same parameters and Python version, nothing is rebuilt.
Output bytes depend only on the arguments and the installed stdlib
(and on zlib for the .gz files).  Logs go to stderr; stdout stays empty.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import os
import platform
import random
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

# Bump when the output format or selection logic changes, so caches go stale.
GENERATOR_VERSION = 1

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "data" / "sample"

MIN_CHARS = 200
MIN_WORDS = 30
NEAR_MIN_JACCARD = 0.8
NATURAL_DUP_JACCARD = 0.5  # well below 0.8 so near-threshold matchers see no strays
SHINGLE = 5
N_GZ_FILES = 4  # plus one plain .jsonl file for the remainder

# Directory names that hold test suites or third-party code, pruned anywhere
# (covers test/, */tests/, lib2to3/tests, idlelib/idle_test).
PRUNED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Collecting documents


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path) -> list[Path]:
    """All .py files under root, sorted by relative path so output is stable."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in PRUNED_DIRS]
        found += [Path(dirpath) / name for name in filenames if name.endswith(".py")]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def module_name(rel: str) -> str:
    parts = rel[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def child_statements(node: ast.AST):
    """Statements nested directly in node's blocks.

    Definitions only occur as statements, so skipping expressions avoids
    walking every node of every file (most of the run time otherwise).
    """
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        block = getattr(node, field, None)
        if isinstance(block, list):
            yield from block


def iter_docstrings(tree: ast.Module, modname: str):
    """Yield (qualified name, domain, docstring) for module, classes, functions."""
    doc = ast.get_docstring(tree, clean=True)
    if doc:
        yield modname, "module", doc

    def visit(node: ast.AST, prefix: str):
        for child in child_statements(node):
            if isinstance(child, ast.ClassDef):
                kind, qual = "class", f"{prefix}.{child.name}"
                inner = qual
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # Mirror __qualname__: names defined inside a function get <locals>.
                kind, qual = "function", f"{prefix}.{child.name}"
                inner = f"{qual}.<locals>"
            else:
                # Descend through if/try/with blocks, which may define things.
                yield from visit(child, prefix)
                continue
            doc = ast.get_docstring(child, clean=True)
            if doc:
                yield qual, kind, doc
            yield from visit(child, inner)

    yield from visit(tree, modname)


def keep_text(text: str) -> bool:
    if len(text) < MIN_CHARS or len(text.split()) < MIN_WORDS:
        return False
    try:
        text.encode("utf-8")  # an escaped lone surrogate would break the output
    except UnicodeEncodeError:
        return False
    return True


def collect_code_docs(root: Path, source_prefix: str, stats: dict) -> list[dict]:
    docs = []
    for path in stdlib_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            # ast.parse on bytes honours the file's coding cookie.
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
            stats["skipped_files"] += 1
            continue
        stats["parsed_files"] += 1
        seen = set()
        for qual, domain, text in iter_docstrings(tree, module_name(rel)):
            doc_id = f"{rel}:{qual}"
            # Conditional redefinitions reuse a qualname; keep the first.
            if doc_id in seen or not keep_text(text):
                continue
            seen.add(doc_id)
            docs.append({"doc_id": doc_id, "text": text, "domain": domain,
                         "source": f"{source_prefix}/{rel}"})
    return docs


def load_topics(path: Path) -> dict:
    """Read the `topics` dict literal without importing the module."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        else:
            continue
        if "topics" in names:
            return ast.literal_eval(node.value)
    raise ValueError(f"no `topics` assignment in {path}")


def collect_topic_docs(root: Path, source_prefix: str) -> list[dict]:
    path = root / "pydoc_data" / "topics.py"
    try:
        topics = load_topics(path)
    except (OSError, SyntaxError, ValueError) as exc:
        log(f"warning: cannot read help topics from {path}: {exc}")
        return []
    source = f"{source_prefix}/pydoc_data/topics.py"
    return [{"doc_id": f"topics:{key}", "text": text, "domain": "topic", "source": source}
            for key, text in sorted(topics.items()) if keep_text(text)]


def drop_natural_duplicates(docs: list[dict]) -> tuple[list[dict], int]:
    """Drop documents that already resemble an earlier kept one.

    The stdlib repeats some docstrings (wrappers, lib2to3 copies, sibling
    functions such as os.spawnl/os.spawnv).  Removing every document whose
    word 5-gram Jaccard with an earlier one is >= NATURAL_DUP_JACCARD makes
    truth.jsonl the complete list of duplicate pairs in the corpus.
    """
    postings: dict[tuple[str, ...], list[int]] = {}
    kept_sizes: list[int] = []
    kept = []
    for doc in docs:
        grams = shingles(doc["text"])
        shared: dict[int, int] = {}
        for gram in grams:
            for k in postings.get(gram, ()):
                shared[k] = shared.get(k, 0) + 1
        if any(n / (len(grams) + kept_sizes[k] - n) >= NATURAL_DUP_JACCARD
               for k, n in shared.items()):
            continue
        for gram in grams:
            postings.setdefault(gram, []).append(len(kept))
        kept_sizes.append(len(grams))
        kept.append(doc)
    return kept, len(docs) - len(kept)


def cap_size(docs: list[dict], max_chars: int, seed: int) -> list[dict]:
    """Keep a seeded random subset within max_chars, in the original order."""
    if max_chars <= 0 or sum(len(d["text"]) for d in docs) <= max_chars:
        return docs
    order = list(range(len(docs)))
    random.Random(f"{seed}/subset").shuffle(order)
    kept, total = [], 0
    for i in order:
        size = len(docs[i]["text"])
        if total + size <= max_chars:
            kept.append(i)
            total += size
    return [docs[i] for i in sorted(kept)]


# --------------------------------------------------------------------------
# Injecting duplicates


def shingles(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}


def jaccard5(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def edit_words(text: str, n_edits: int, rng: random.Random) -> str:
    """Apply n word substitutions/deletions/insertions, keeping the whitespace
    between untouched words so the copy differs only where it was edited."""
    leading = text[: len(text) - len(text.lstrip())]
    pairs = [[m.group(1), m.group(2)] for m in re.finditer(r"(\S+)(\s*)", text)]
    vocab = [w for w, _ in pairs]
    for _ in range(n_edits):
        op = rng.choice(("substitute", "delete", "insert"))
        i = rng.randrange(len(pairs))
        if op == "delete" and len(pairs) > SHINGLE + 1:
            _, ws = pairs.pop(i)
            if i == len(pairs) and pairs:  # removed the last word: keep text's tail
                pairs[-1][1] = ws
        elif op == "insert":
            pairs.insert(i, [rng.choice(vocab), " "])
        else:
            old = pairs[i][0].lower()
            choices = [w for w in vocab if w.lower() != old]
            if choices:
                pairs[i][0] = rng.choice(choices)
    return leading + "".join(w + ws for w, ws in pairs)


def make_near_copy(text: str, rng: random.Random, attempts_at_one: int = 8):
    """Return (edited text, jaccard5, edits) or None if no edit keeps J >= 0.8.

    Each edit touches up to five 5-grams, so short texts may only tolerate an
    edit near either end; those get a few random tries before giving up.
    """
    n_words = len(text.split())
    n = max(1, round(n_words * rng.uniform(0.02, 0.04)))
    tries_at_one = 0
    while True:
        edited = edit_words(text, n, rng)
        if edited != text:
            sim = jaccard5(text, edited)
            if NEAR_MIN_JACCARD <= sim < 1.0:
                return edited, sim, n
        if n > 1:
            n = min(n - 1, int(n * 0.9))  # shrink quickly on long texts
        else:
            tries_at_one += 1
            if tries_at_one >= attempts_at_one:
                return None


def inject_duplicates(docs: list[dict], exact_rate: float, near_rate: float,
                      seed: int, stats: dict) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    n = len(docs)
    n_exact, n_near = round(n * exact_rate), round(n * near_rate)
    order = list(range(n))
    rng.shuffle(order)

    copies, truth = [], []
    for i in sorted(order[:n_exact]):
        orig = docs[i]
        copies.append({**orig, "doc_id": orig["doc_id"] + "#dup1"})
        truth.append({"doc_id": orig["doc_id"] + "#dup1", "original": orig["doc_id"],
                      "kind": "exact", "jaccard5": 1.0})

    # Candidates that cannot take even one edit are passed over, so the
    # near count still meets the rate when enough documents are available.
    made, edit_fracs = 0, []
    for i in order[n_exact:]:
        if made == n_near:
            break
        orig = docs[i]
        result = make_near_copy(orig["text"], rng)
        if result is None:
            stats["near_candidates_skipped"] += 1
            continue
        text, sim, edits = result
        copies.append({**orig, "doc_id": orig["doc_id"] + "#near1", "text": text})
        truth.append({"doc_id": orig["doc_id"] + "#near1", "original": orig["doc_id"],
                      "kind": "near", "jaccard5": round(sim, 6)})
        edit_fracs.append(edits / len(orig["text"].split()))
        made += 1
    if made < n_near:
        log(f"warning: only {made} of {n_near} near duplicates could be made")
    stats["near_edit_fraction_mean"] = (
        round(sum(edit_fracs) / len(edit_fracs), 4) if edit_fracs else None)

    records = docs + copies
    shuffle_apart(records, rng)
    truth.sort(key=lambda t: t["doc_id"])
    return records, truth


def base_id(doc_id: str) -> str:
    return doc_id.split("#", 1)[0]


def shuffle_apart(records: list[dict], rng: random.Random) -> None:
    """Shuffle until no copy sits right next to its original (rarely >1 pass)."""
    while True:
        rng.shuffle(records)
        if all(base_id(a["doc_id"]) != base_id(b["doc_id"])
               for a, b in zip(records, records[1:], strict=False)):
            return


# --------------------------------------------------------------------------
# Writing


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def write_jsonl(path: Path, records: list[dict]) -> None:
    data = "".join(dumps(r) + "\n" for r in records).encode("utf-8")
    if path.suffix == ".gz":
        # mtime=0 and an empty header filename make the bytes reproducible.
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                    compresslevel=9, mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def write_outputs(tmp: Path, records: list[dict], truth: list[dict], stats: dict) -> None:
    raw = tmp / "raw"
    raw.mkdir()
    n_files = N_GZ_FILES + 1
    n = len(records)
    for k in range(n_files):
        name = f"docs-{k:02d}.jsonl" + (".gz" if k < N_GZ_FILES else "")
        write_jsonl(raw / name, records[k * n // n_files:(k + 1) * n // n_files])
    write_jsonl(tmp / "truth.jsonl", truth)
    (tmp / "stats.json").write_text(
        json.dumps(stats, ensure_ascii=False, sort_keys=True, indent=2) + "\n",
        encoding="utf-8")


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished build into place; the old build is removed after."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old)


# --------------------------------------------------------------------------
# Cache and CLI


def cache_key(args: argparse.Namespace) -> dict:
    """Everything that changes the output; compared against stats.json."""
    return {"generator_version": GENERATOR_VERSION,
            "python_version": platform.python_version(),
            "seed": args.seed,
            "exact_rate": args.exact_rate,
            "near_rate": args.near_rate,
            "max_chars": args.max_chars}


def read_stats(out: Path) -> dict | None:
    try:
        return json.loads((out / "stats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_up_to_date(out: Path, key: dict) -> bool:
    stats = read_stats(out)
    return stats is not None and all(stats.get(k) == v for k, v in key.items())


def check_replaceable(out: Path) -> None:
    """Refuse to delete a directory this script did not create."""
    if out.exists() and any(out.iterdir()):
        stats = read_stats(out)
        if not (isinstance(stats, dict) and "generator_version" in stats):
            sys.exit(f"error: {out} exists and is not a sample corpus; "
                     "choose another --out or remove it")


def build(args: argparse.Namespace, out: Path) -> dict:
    root = stdlib_dir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    source_prefix = f"cpython-{version}"
    stats = {**cache_key(args), "skipped_files": 0, "parsed_files": 0,
             "near_candidates_skipped": 0}

    log(f"reading docstrings under {root}")
    docs = collect_code_docs(root, source_prefix, stats)
    docs += collect_topic_docs(root, source_prefix)
    docs, stats["natural_duplicates_dropped"] = drop_natural_duplicates(docs)
    available = sum(len(d["text"]) for d in docs)
    docs = cap_size(docs, args.max_chars, args.seed)
    log(f"{len(docs)} documents kept ({available:,} chars available)")

    records, truth = inject_duplicates(docs, args.exact_rate, args.near_rate, args.seed, stats)
    domains: dict[str, int] = {}
    for d in docs:
        domains[d["domain"]] = domains.get(d["domain"], 0) + 1
    stats.update({
        "originals": len(docs),
        "exact_copies": sum(t["kind"] == "exact" for t in truth),
        "near_copies": sum(t["kind"] == "near" for t in truth),
        "total_records": len(records),
        "total_chars": sum(len(r["text"]) for r in records),
        "original_chars": sum(len(d["text"]) for d in docs),
        "domains": domains,
        "source_prefix": source_prefix,
    })

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write_outputs(tmp, records, truth, stats)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def rate(value: str) -> float:
    x = float(value)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"rate must be within [0, 1], got {value}")
    return x


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the deterministic sample corpus from CPython's own docstrings "
                    "and help topics, with injected exact and near duplicates.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    parser.add_argument("--exact-rate", type=rate, default=0.05,
                        help="fraction of originals that get an exact copy")
    parser.add_argument("--near-rate", type=rate, default=0.05,
                        help="fraction of originals that get a near-duplicate copy")
    parser.add_argument("--max-chars", type=int, default=6_000_000,
                        help="cap on original text; a seeded subset is kept above it (0: no cap)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    if args.exact_rate + args.near_rate > 1.0:
        parser.error("--exact-rate + --near-rate must not exceed 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    if not args.force and is_up_to_date(out, cache_key(args)):
        log(f"sample corpus up to date: {out}")
        return 0
    check_replaceable(out)
    start = time.monotonic()
    stats = build(args, out)
    log(f"wrote {out}: {stats['originals']} originals + {stats['exact_copies']} exact + "
        f"{stats['near_copies']} near = {stats['total_records']} records, "
        f"{stats['total_chars']:,} chars, {stats['skipped_files']} files skipped "
        f"({time.monotonic() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
