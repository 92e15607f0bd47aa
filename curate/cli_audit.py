"""`curate audit`: size, duplication, columns and lineage of a dataset, in the terminal or as HTML."""

from __future__ import annotations

import json

import click

from curate import log
from curate.cli import EXIT_CODES, cli

METHODS = """\b
How each figure is made (memory does not grow with the corpus):
  rows, bytes, columns every row, exact (characters too, without --sample)
  exact duplicates     whitespace-normalised 128-bit hash of every document, counted
                       exactly up to 2M distinct documents, beyond that over a hash
                       sample (all copies of a document share a hash) with a 95% CI
  near duplicates      MinHash (128 permutations, word 5-grams as `curate dedup
                       minhash`, 21 LSH bands x 6 rows, Jaccard >= 0.8 estimated from the
                       signatures) of a seeded uniform sample of --near-sample documents;
                       every document of the corpus is checked against the sample, so the
                       share of sampled documents with a near copy anywhere estimates the
                       corpus rate (Wilson 95% CI). With --sample: within the sample only,
                       a lower bound for the corpus (shown as "≥")
  distinct 5-grams     datasketch HyperLogLog (p=14: ±1.6% at 95%)
  repeated lines       Misra-Gries heavy hitters (4096 counters), each count at most the
                       printed bound below the truth
  quantiles            a uniform sample of 20,000 rows (rank error printed), exact below
  --sample N           characters, words, 5-grams, lines, MinHash over a seeded uniform sample of N
                       documents; totals estimated with 95% CIs
"""


@cli.command(epilog=METHODS + "\n" + EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.option("--html", "html", type=click.Path(dir_okay=False), default=None, metavar="FILE.html",
              help="Also write a self-contained HTML report (inline SVG plots, no scripts, no network).")
@click.option("--sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Audit the costly figures on a seeded uniform sample of N documents (says so, with error bars).")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True,
              help="Seed of the samples (0 to 2^64-1: the row keys are 64-bit).")
@click.option("--compare", "compare", default=None, metavar="B",
              help="Audit B too and show the two side by side (e.g. raw vs final).")
@click.option("--near-sample", type=click.IntRange(min=1), default=100_000, show_default=True, metavar="N",
              help="Documents in the MinHash sample for the near-duplicate rate.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Repeated lines/paragraphs to list.")
@click.option("-j", "--workers", type=click.IntRange(min=1), envvar="CURATE_WORKERS", default=None,
              help="Processes, one shard each [default: the number of CPUs; one for small inputs].")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of tables.")
def audit(dataset, html, sample, seed, compare, near_sample, top, workers, quiet, as_json):
    """What is in a dataset: size, length distribution, duplication, every column, and the
    lineage back to ingest with what each stage removed.

    \b
    Examples:
      curate audit clean/
      curate audit clean/ --html report.html
      curate audit big/ --sample 100000 --json | jq .duplication.near
      curate audit clean/ --compare raw/ --html compare.html
    """
    from curate.audit.report import AuditParams, refuse_stdin
    from curate.audit.report import audit as run_audit
    from curate.run.executor import default_workers, pool_min_bytes

    log.set_quiet(quiet)
    # the cheap checks before a long audit, not after it
    refuse_stdin(dataset)
    refuse_stdin(compare, "--compare")
    html_loc = _html_target(html) if html else None
    params = AuditParams(sample=sample, seed=seed, near_sample=near_sample, top=top, workers=workers or default_workers())
    if workers is None:
        from curate.io.dataset import open_dataset

        try:
            if open_dataset(dataset).total_bytes < pool_min_bytes():
                params = AuditParams(**{**params.__dict__, "workers": 1})
        except Exception:
            pass  # audit() reports the problem itself
    a = run_audit(dataset, params)
    b = run_audit(compare, params) if compare else None
    if html_loc:
        from curate.audit.html import render

        _write_html(html_loc, render(a, b).encode())
        log.info(f"audit: wrote {html}")
    if as_json:
        click.echo(json.dumps(a if b is None else {"a": a, "b": b}, sort_keys=True))
        return
    from curate.audit.terminal import show, show_compare

    if b is None:
        show(a)
    else:
        show_compare(a, b)


HTML_HINT = "give --html a path in an existing, writable directory (create the directory first)"


def _html_target(html: str):
    """The --html location; a local one whose directory is missing or not writable is refused now.
    (Object stores have no directories to check: a failure there shows when writing.)"""
    import os

    from curate.errors import OutputError
    from curate.io.location import locate

    loc = locate(html)
    if loc.is_local:
        parent = os.path.dirname(loc.path) or "."
        if not os.path.isdir(parent):
            why = "is not a directory" if os.path.exists(parent) else "does not exist"
            raise OutputError(f"cannot write the HTML report: {parent} {why}", where=html, hint=HTML_HINT)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write the HTML report: directory {parent} is not writable", where=html, hint=HTML_HINT)
    return loc


def _write_html(loc, data: bytes) -> None:
    import pyarrow as pa

    from curate.errors import OutputError
    from curate.io.atomic import write_bytes_atomic

    try:
        write_bytes_atomic(loc, data)
    except (OSError, pa.ArrowException) as e:  # the disk full, the directory gone since the start
        raise OutputError(f"cannot write the HTML report: {e}", where=loc.uri, hint=HTML_HINT) from None
