"""The curate command line: parse, validate, call one library function, print. No logic here."""

from __future__ import annotations

import gc
import json
import os
import sys

# curate does no linear algebra; OpenBLAS's thread pool, started when numpy is imported, costs
# ~70 ms per process (every worker too). Set before anything imports numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Arrow's mimalloc reserves a 1 GB arena with MADV_HUGEPAGE: every first touch then zeroes a
# whole 2 MB page, ~60 ms of a 0.4 s small run, and no measured gain on large ones (BENCHMARKS.md).
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

import click  # noqa: E402

from curate import __version__, log  # noqa: E402
from curate.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CurateError
from curate.options import make_run_options, output_options, parse_shard_size, run_options

EXIT_CODES = """\b
Exit codes:
  0    success (also: output already complete, nothing to do)
  1    bad input data, a failed task, or an output conflict
  2    bad usage (unknown option, bad value)
  70   internal error: a bug in curate (a traceback is printed)
  130  interrupted (Ctrl-C); rerun the same command to resume
"""


class CurateClickError(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


# Commands defined in modules of their own, imported when first named (~1 ms each at start-up).
LAZY_COMMANDS = {"audit": "curate.cli_audit", "filter": "curate.cli_filter", "ngram": "curate.cli_lm",
                 "score": "curate.cli_lm", "resample": "curate.cli_resample"}


class CurateGroup(click.Group):
    """Turns library errors into one clean message and a documented exit code."""

    def get_command(self, ctx, name: str):
        if name not in self.commands and name in LAZY_COMMANDS:
            import importlib

            importlib.import_module(LAZY_COMMANDS[name])
        return super().get_command(ctx, name)

    def list_commands(self, ctx) -> list[str]:
        for name in LAZY_COMMANDS:
            self.get_command(ctx, name)
        return super().list_commands(ctx)

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in LAZY_COMMANDS:
            self.list_commands(ctx)  # a typo: every name, for click's "Did you mean"
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CurateError as e:
            raise CurateClickError(e.render(), e.exit_code) from None
        except KeyboardInterrupt:
            raise CurateClickError("interrupted; rerun the same command to resume", EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            # `curate ... - | head`: the reader left early; not an error, and no traceback at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            import traceback  # only here: its imports cost a small run ~3 ms

            traceback.print_exc(file=sys.stderr)
            raise CurateClickError(f"internal error ({type(e).__name__}: {e}); this is a bug in curate, please report it with the traceback above", EXIT_INTERNAL) from None


@click.group(cls=CurateGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="curate")
@click.option("--config", type=click.Path(dir_okay=False), envvar="CURATE_CONFIG", show_envvar=True,
              help="TOML file of option defaults: a [defaults] table and one table per command.")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """Curate pretraining corpora: each command reads a sharded Parquet dataset and writes one.

    \b
    A dataset is a directory of part-NNNNN.parquet shards with a _manifest.json
    and a _SUCCESS marker. '-' means an Arrow stream on stdin/stdout, so commands pipe.

    \b
    Examples:
      curate ingest 'crawl/*.jsonl.zst' raw/          # JSON Lines -> sharded Parquet
      curate info raw/                                # schema, rows, lineage
      curate head raw/ -n 3                           # first documents
      curate export raw/ out/ --format jsonl.zst --shard-size 100k
      curate ingest docs.jsonl - | curate export - - --format jsonl | head

    Options also come from the environment (CURATE_WORKERS, CURATE_TASK, CURATE_PROGRESS,
    CURATE_MEMORY, CURATE_CONFIG) and from --config FILE.toml; the command line wins.
    """
    if config:
        from curate.config import load_default_map

        ctx.default_map = load_default_map(config, cli)


def _finish(summary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True))


def _no_json_on_stdout(out: str, as_json: bool) -> None:
    if out == "-" and as_json:
        raise click.UsageError("--json prints on stdout, which already carries the data ('-'); use one or the other")


@cli.command(epilog=EXIT_CODES)
@click.argument("inputs", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "lines", "files", "parquet"]), default="auto", show_default=True,
              help="Input format. auto: by extension (.jsonl/.json/.ndjson[.gz|.zst|.bz2], .parquet, .txt = a document per line). "
                   "'files': each file is one document.")
@click.option("--text-field", default="text", show_default=True, help="Field (or column) that holds the document text.")
@click.option("--id-field", default=None, help="Field to use as the document id [default: generate '<file>:<record number>'].")
@click.option("--fields", default=None, help="Comma-separated extra fields to keep [default: all fields seen in the first block].")
@click.option("--shard-size", default="256MB", show_default=True,
              help="Rows per output shard (100000, 100k, 1M) or text bytes per shard (256MB, 1GB).")
@click.option("--on-bad-record", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
              help="A line that is not valid JSON or UTF-8: stop with its line number, or set it aside (counted, kept in --rejects).")
@click.option("--rejects", type=str, default=None, help="Directory for rejected records (empty text, bad lines) with a reject_reason.")
@run_options
@output_options
def ingest(inputs, out, fmt, text_field, id_field, fields, shard_size, on_bad_record, rejects, workers, task_slice,
           overwrite, keep_work, progress, compression, quiet, as_json):
    """Convert JSON Lines, plain text or Parquet into a sharded Parquet dataset.

    IN is a file, a directory, a quoted glob, a URI (s3://, gs://, hdfs://) or '-' (JSON Lines
    on stdin). OUT is a directory, or '-' for an Arrow stream on stdout. Every output row has a
    stable string `id` and a string `text`; other fields are kept as columns. Records with a
    null or blank text are rejected (counted in the manifest, kept with --rejects).

    \b
    Examples:
      curate ingest 'crawl/*.jsonl.zst' raw/
      curate ingest wiki.txt raw/ --shard-size 100k          # a document per line
      curate ingest books/ raw/ --format files                # a document per file
      curate ingest data.parquet raw/ --text-field content --id-field doc_id
      zcat dump.jsonl.gz | curate ingest - raw/ --on-bad-record skip --rejects bad/
    """
    from curate.stages.ingest import Ingest, IngestParams

    log.set_quiet(quiet)
    _no_json_on_stdout(out, as_json)
    rows, nbytes = parse_shard_size(shard_size)
    params = IngestParams(
        format=fmt, text_field=text_field, id_field=id_field,
        fields=tuple(f.strip() for f in fields.split(",") if f.strip()) if fields is not None else None,
        shard_rows=rows, shard_bytes=nbytes, on_bad_record=on_bad_record,
    )
    from curate.io.location import is_glob, locate
    from curate.run.executor import execute

    stage = Ingest(inputs, params)
    locs = [] if inputs == "-" else [f.loc for f in stage.files] if is_glob(inputs) else [locate(inputs)]
    summary = execute(stage, out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression, rejects, quiet), locs)
    _report_counters(summary)
    _finish(summary, as_json)


def _report_counters(summary) -> None:
    for k, v in sorted(summary.counters.items()):
        if k.startswith("dropped_field:"):
            log.warn(f"field '{k.split(':', 1)[1]}' was not in the schema sample and was dropped in {v} block(s); name it in --fields to keep it")
        elif k in ("empty_text", "bad_records", "empty_files", "utf8_replaced"):
            log.info(f"{summary.stage}: {k.replace('_', ' ')}: {v:,}")


@cli.command(epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "jsonl.gz", "jsonl.zst", "parquet"]), default=None,
              help="Output format [default: jsonl.zst, or jsonl when OUT is '-'].")
@click.option("--shard-size", default=None, help="Re-shard: rows (100k) or text bytes (256MB) per output file [default: one file per input shard].")
@click.option("--columns", default=None, help="Comma-separated columns to export [default: all].")
@run_options
@output_options
def export(dataset, out, fmt, shard_size, columns, workers, task_slice, overwrite, keep_work, progress, compression, quiet, as_json):
    """Write a dataset as JSON Lines (plain, .gz, .zst) or Parquet, optionally re-sharded.

    \b
    Examples:
      curate export clean/ release/ --format jsonl.zst --shard-size 1GB
      curate export clean/ - --columns id,text | head -n 5      # JSON Lines on stdout
      curate export clean/ flat/ --format parquet --shard-size 500k
    """
    from curate.io.dataset import open_dataset
    from curate.run.executor import execute
    from curate.stages.base import input_locations
    from curate.stages.export import Export, ExportParams

    log.set_quiet(quiet)
    _no_json_on_stdout(out, as_json)
    rows, nbytes = parse_shard_size(shard_size)
    fmt = fmt or ("jsonl" if out == "-" else "jsonl.zst")
    ds = open_dataset(dataset)
    params = ExportParams(format=fmt, shard_rows=rows, shard_bytes=nbytes,
                          columns=tuple(c.strip() for c in columns.split(",")) if columns else None)
    if params.columns and not ds.stdin:
        from curate.io.dataset import reference_schema

        names = reference_schema(ds).names
        missing = [c for c in params.columns if c not in names]
        if missing:
            raise click.BadParameter(f"unknown column(s) {', '.join(missing)}; the columns are: {', '.join(names)}", param_hint="--columns")
    summary = execute(Export(ds, params), out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression, None, quiet), input_locations(ds))
    _finish(summary, as_json)


@cli.command(epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.option("-n", "--rows", "n", type=click.IntRange(min=0), default=5, show_default=True, help="How many rows.")
@click.option("--columns", default=None, help="Comma-separated columns [default: all].")
@click.option("--width", type=click.IntRange(min=10), default=200, show_default=True, help="Truncate long values to this many characters.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True,
              help="table: readable, values truncated; jsonl: exact rows, one JSON object per line.")
def head(dataset, n, columns, width, fmt):
    """Show the first rows of a dataset.

    \b
    Examples:
      curate head raw/
      curate head raw/ -n 20 --columns id,text --width 80
      curate head raw/ --format jsonl | jq .id
    """
    from curate.io.dataset import open_dataset
    from curate.stages.inspect import head as head_rows

    ds = open_dataset(dataset)
    cols = [c.strip() for c in columns.split(",")] if columns else None
    if cols and not ds.stdin and ds.shards:
        from curate.io.dataset import reference_schema

        names = reference_schema(ds).names
        missing = [c for c in cols if c not in names]
        if missing:
            raise click.BadParameter(f"unknown column(s) {', '.join(missing)}; the columns are: {', '.join(names)}", param_hint="--columns")
    table = head_rows(ds, n, cols)
    if fmt == "jsonl":
        from curate.io.jsonl import encode_jsonl

        for b in table.to_batches():
            sys.stdout.buffer.write(encode_jsonl(b).to_pybytes())
        sys.stdout.flush()
        return
    _print_table(table, width)


def _print_table(table, width: int) -> None:
    from rich.table import Table

    console = log.stdout_console(160)
    t = Table(show_lines=True)
    for name in table.column_names:
        t.add_column(name, overflow="fold")
    for row in table.to_pylist():
        cells = []
        for v in row.values():
            s = "" if v is None else str(v)
            s = s.replace("\n", "⏎ ")
            cells.append(s if len(s) <= width else s[: width - 1] + "…")
        t.add_row(*cells)
    console.print(t)
    console.print(f"{table.num_rows} row(s)", style="dim")


@cli.command(epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
@click.option("--shards", "show_shards", is_flag=True, help="List every shard with its rows and bytes.")
def info(dataset, as_json, show_shards):
    """Show a dataset's schema, rows, bytes, shards and manifest chain (reads footers only).

    \b
    Examples:
      curate info raw/
      curate info clean/ --json | jq '.lineage[].stage'
    """
    from curate.io.dataset import open_dataset
    from curate.stages.inspect import info as dataset_info
    from curate.stages.inspect import stdin_info

    ds = open_dataset(dataset)
    data = stdin_info() if ds.stdin else dataset_info(ds)
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    _print_info(data, show_shards)


def _print_info(data: dict, show_shards: bool) -> None:
    from rich.table import Table

    c = log.stdout_console()
    c.print(f"[bold]{data['dataset']}[/bold]  {data['shards']} shard(s), {data['rows']:,} rows, {log.human_bytes(data['bytes'])}"
            + ("" if data["complete"] else "  [yellow](no manifest: not written by curate)[/yellow]"))
    s = Table(title="schema", title_justify="left")
    s.add_column("column")
    s.add_column("type")
    for f in data["schema"]:
        s.add_row(f["name"], f["type"])
    c.print(s)
    if show_shards and data["shard_list"]:
        t = Table(title="shards", title_justify="left")
        for col in ("name", "rows", "bytes", "row groups"):
            t.add_column(col, justify="right" if col != "name" else "left")
        for sh in data["shard_list"]:
            t.add_row(sh["name"], f"{sh['rows']:,}", log.human_bytes(sh["bytes"]), str(sh["row_groups"]))
        c.print(t)
    if data["lineage"]:
        c.print("[bold]lineage[/bold] (oldest first)")
        for k, a in enumerate(data["lineage"], 1):
            c.print(f"  {k}. [bold]{a.get('stage') or '?'}[/bold]  {_n(a.get('rows_in'))} in -> {_n(a.get('rows_out'))} kept, "
                    f"{_n(a.get('rows_rejected'))} rejected  [dim]{a.get('finished') or ''}[/dim]", highlight=False)
            params = " ".join(f"{k}={v}" for k, v in sorted((a.get("params") or {}).items()) if v not in (None, False))
            if params:
                c.print(f"     params: {params}", highlight=False, soft_wrap=True)
            if a.get("seed") is not None:
                c.print(f"     seed: {a['seed']}", highlight=False)
            if a.get("counters"):
                c.print("     counters: " + " ".join(f"{k}={v:,}" for k, v in sorted(a["counters"].items())), highlight=False)


@cli.group(cls=CurateGroup, epilog=EXIT_CODES)
def dedup():
    """Remove (or mark) duplicate documents: exact, paragraph-level, or near duplicates (MinHash).

    \b
    Examples:
      curate dedup exact raw/ exact/ --rejects exact_rejects/
      curate dedup minhash exact/ near/ --threshold 0.8
      curate dedup minhash raw/ marked/ --mode annotate      # keep all, add dup_cluster/dup_count
    """


def dedup_options(f):
    opts = (
        click.option("--mode", type=click.Choice(["drop", "annotate"]), default="drop", show_default=True,
                     help="drop: keep one document per cluster; annotate: keep every row and add dup_cluster "
                          "(id of the cluster's kept document) and dup_count."),
        click.option("--keep", default="first", show_default=True,
                     help="Which document of a cluster is kept: first, longest, max:COLUMN or min:COLUMN."),
        click.option("--rejects", default=None, help="Directory for removed rows, each with dup_of = the id kept in its place."),
        click.option("--memory", default=None, envvar="CURATE_MEMORY", show_envvar=True,
                     help="Memory for the global step, shared by the workers (4G, 512M) [default: half the RAM]. "
                          "A partition that does not fit spills to disk."),
    )
    for o in reversed(opts):
        f = o(f)
    return f


def _memory_per_task(memory, workers) -> int:
    from curate.run.executor import default_workers
    from curate.stages.dedup_common import parse_memory

    return max(parse_memory(memory) // (workers or default_workers()), 16 << 10)


def _run_dedup(stage_cls, params, dataset, out, run_opts, quiet, as_json, rejects, memory):
    from curate.io.dataset import open_dataset
    from curate.run.executor import execute
    from curate.stages.base import input_locations

    log.set_quiet(quiet)
    if out == "-":
        raise click.UsageError("dedup is a global stage: OUT must be a directory, not '-'")
    ds = open_dataset(dataset)
    workers, task_slice, overwrite, keep_work, progress, compression = run_opts
    stage = stage_cls(ds, params, _memory_per_task(memory, workers))
    summary = execute(stage, out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression, rejects, quiet), input_locations(ds))
    _finish(summary, as_json)


@dedup.command("exact", epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--normalize", "norm", type=click.Choice(["none", "whitespace", "simple"]), default="whitespace", show_default=True,
              help="Compare texts after: none; whitespace runs collapsed; simple = also lower-case, punctuation to "
                   "space, digits to 0.")
@dedup_options
@run_options
@output_options
def dedup_exact(dataset, out, norm, mode, keep, rejects, memory, workers, task_slice, overwrite, keep_work, progress, compression, quiet, as_json):
    """Exact duplicates: identical text after normalisation (128-bit hash).

    \b
    Examples:
      curate dedup exact raw/ exact/
      curate dedup exact raw/ exact/ --normalize simple --keep longest --rejects dups/
      curate dedup exact raw/ marked/ --mode annotate
    """
    from curate.stages.dedup_exact import DedupExact, ExactParams

    params = ExactParams(normalize=norm, mode=mode, keep=keep)
    _run_dedup(DedupExact, params, dataset, out, (workers, task_slice, overwrite, keep_work, progress, compression), quiet, as_json, rejects, memory)


@dedup.command("paragraphs", epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--unit", type=click.Choice(["line", "paragraph"]), default="line", show_default=True,
              help="line: split on newlines (CCNet); paragraph: split on blank lines.")
@click.option("--normalize", "norm", type=click.Choice(["none", "whitespace", "simple"]), default="simple", show_default=True,
              help="Compare units after this normalisation (blank units are never duplicates).")
@click.option("--min-chars", type=click.IntRange(min=0), default=0, show_default=True,
              help="Reject documents that dedup shortened to fewer characters than this (a document it empties is always rejected).")
@dedup_options
@run_options
@output_options
def dedup_paragraphs(dataset, out, unit, norm, min_chars, mode, keep, rejects, memory, workers, task_slice, overwrite,
                     keep_work, progress, compression, quiet, as_json):
    """Remove lines or paragraphs that occur elsewhere in the corpus, keeping the first occurrence.

    In annotate mode the text is left as it is and dup_units / dup_chars count what would go.

    \b
    Examples:
      curate dedup paragraphs raw/ lines/ --min-chars 200 --rejects emptied/
      curate dedup paragraphs raw/ paras/ --unit paragraph
      curate dedup paragraphs raw/ marked/ --mode annotate
    """
    from curate.stages.dedup_paragraphs import DedupParagraphs, ParagraphParams

    params = ParagraphParams(unit=unit, normalize=norm, min_chars=min_chars, mode=mode, keep=keep)
    _run_dedup(DedupParagraphs, params, dataset, out, (workers, task_slice, overwrite, keep_work, progress, compression), quiet, as_json, rejects, memory)


@dedup.command("minhash", epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--ngram", type=click.IntRange(min=1), default=5, show_default=True,
              help="Word n-gram shingles of the simple-normalised text (shorter documents are one shingle).")
@click.option("--char-ngrams", type=click.IntRange(min=1), default=None, help="Use character n-grams of this size instead of words.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=0.8, show_default=True,
              help="Jaccard similarity that makes two documents duplicates.")
@click.option("--num-perm", type=click.IntRange(min=1, max=1024), default=128, show_default=True, help="MinHash permutations.")
@click.option("--bands", type=click.IntRange(min=1), default=None, help="LSH bands [default: minimise false positive + negative area at --threshold].")
@click.option("--rows", type=click.IntRange(min=1), default=None, help="Rows per band (with --bands).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check each candidate pair's true Jaccard of the shingle sets before joining clusters, so the banding "
                   "can favour recall (16 x 8 at 0.8). --no-verify believes every candidate and balances false positives "
                   "and negatives (9 x 13 at 0.8): ~15% faster, recall 0.91 instead of 0.99 on the benchmarks.")
@dedup_options
@run_options
@output_options
def dedup_minhash(dataset, out, ngram, char_ngrams, threshold, num_perm, bands, rows, verify, mode, keep, rejects, memory,
                  workers, task_slice, overwrite, keep_work, progress, compression, quiet, as_json):
    """Near duplicates: MinHash LSH over shingles, clusters by connected components.

    \b
    Examples:
      curate dedup minhash raw/ near/ --rejects near_rejects/
      curate dedup minhash raw/ near/ --threshold 0.7
      curate dedup minhash raw/ near/ --no-verify --char-ngrams 5 --bands 20 --rows 5
      curate dedup minhash raw/ marked/ --mode annotate --keep max:quality
    """
    from curate.stages.dedup_minhash import DedupMinhash, MinhashParams

    params = MinhashParams(ngram=ngram, char_ngrams=char_ngrams, threshold=threshold, num_perm=num_perm, bands=bands,
                           rows=rows, verify=verify, mode=mode, keep=keep)
    _run_dedup(DedupMinhash, params, dataset, out, (workers, task_slice, overwrite, keep_work, progress, compression), quiet, as_json, rejects, memory)


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else "-"


def main() -> None:
    # A command's imports (pyarrow, numpy: ~0.2 s) allocate thousands of long-lived objects, and
    # the cyclic GC rescanning them costs ~15 ms: off until its run starts (proc.imports_done).
    gc.disable()
    try:
        cli(prog_name="curate")
        code = 0
    except SystemExit as e:
        code = e.code
    _exit(code)


def _exit(code) -> None:
    """Exit as SystemExit(code) would, minus the interpreter's teardown (freeing every module,
    Arrow's and numpy's globals: ~40 ms after the work is done, a tenth of a small run). Every
    file is closed by then; atexit handlers and non-daemon threads are still waited for."""
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass  # a closed pipe (`| head`): nothing left to tell anyone
    os._exit(code)


if __name__ == "__main__":
    # `python -m curate.cli`: the commands were registered on the imported curate.cli, not on
    # this __main__ copy of it
    from curate.cli import main as _main

    _main()
