"""Shared options: each decorator applies a tuple of click options; values arrive as one dataclass."""

from __future__ import annotations

import re

import click

from curate.run.proc import default_workers

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_ROW_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "rows": 1}
_BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_shard_size(value: str | None) -> tuple[int | None, int | None]:
    """'100000' or '100k' -> rows; '256MB' or '1GiB' -> bytes of text. Returns (rows, bytes)."""
    if value is None:
        return None, None
    m = _SIZE.match(str(value))
    unit = m.group(2).lower() if m else None
    if not m or (unit not in _ROW_UNITS and unit not in _BYTE_UNITS):
        raise click.BadParameter(
            f"{value!r} is not a size: use rows (100000, 100k, 1M) or bytes of text (256MB, 1GB, 512MiB)",
            param_hint="--shard-size",
        )
    n = float(m.group(1))
    if unit in _ROW_UNITS:
        rows = int(n * _ROW_UNITS[unit])
        if rows < 1:
            raise click.BadParameter("must be at least 1 row", param_hint="--shard-size")
        return rows, None
    nbytes = int(n * _BYTE_UNITS[unit])
    if nbytes < 1:
        raise click.BadParameter("must be at least 1 byte", param_hint="--shard-size")
    return None, nbytes


class TaskSlice(click.ParamType):
    name = "I/N"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
        if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
            self.fail(f"{value!r}: expected I/N with 0 <= I < N (e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", param, ctx)
        return int(m.group(1)), int(m.group(2))


class Compression(click.ParamType):
    name = "CODEC[:LEVEL]"

    def convert(self, value, param, ctx):
        from curate.io.parquet import parse_compression

        try:
            codec, level = parse_compression(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)
        return codec if level is None else f"{codec}:{level}"


def _remember(ctx: click.Context, param: click.Parameter, value):
    """--executor and --ray-address reach make_run_options through the context, so that every
    command gets them from @run_options alone, without a new argument in each signature."""
    ctx.meta[f"curate.{param.name}"] = value
    return value


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


output_options = _apply(
    (
        click.option("-q", "--quiet", is_flag=True, help="No progress and no info lines on stderr (warnings and errors still print)."),
        click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout at the end."),
    )
)

run_options = _apply(
    (
        click.option("-j", "--workers", type=click.IntRange(min=1), envvar="CURATE_WORKERS", show_envvar=True,
                     default=None, help="Worker processes [default: the number of CPUs]."),
        click.option("--task", "task_slice", type=TaskSlice(), envvar="CURATE_TASK", show_envvar=True, default=None,
                     help="Run only slice I of N of the shards (Slurm arrays, cron fan-out); the last slice to finish completes the dataset."),
        click.option("--overwrite", is_flag=True, help="Redo everything: clear OUT (and --rejects) first."),
        click.option("--keep-work", is_flag=True, help="Keep OUT/_work (intermediate files and done-markers) after success."),
        click.option("--progress", type=click.Choice(["auto", "bar", "plain", "none"]), default="auto", show_default=True,
                     envvar="CURATE_PROGRESS", help="Progress display: a bar on a terminal, plain lines in cron."),
        click.option("--compression", type=Compression(), default="zstd:3", show_default=True, envvar="CURATE_COMPRESSION",
                     show_envvar=True, help="Codec of the shards written: zstd[:LEVEL], lz4, snappy, gzip[:LEVEL], none. "
                     "zstd:1 writes about 1.7x faster for files ~35% larger."),
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     envvar="CURATE_EXECUTOR", show_envvar=True, expose_value=False, callback=_remember,
                     help="Where tasks run: local worker processes (-j), or Ray tasks on a Ray cluster "
                     "(pip install 'curate[ray]'). The output is the same bytes either way."),
        click.option("--ray-address", metavar="HOST:PORT", envvar="CURATE_RAY_ADDRESS", show_envvar=True, default=None,
                     expose_value=False, callback=_remember,
                     help="The Ray cluster to run on (what `ray start --head` printed, or 'auto'); without it "
                     "--executor ray starts a local Ray with -j CPUs."),
    )
)


def make_run_options(workers, task_slice, overwrite, keep_work, progress, compression="zstd:3", rejects=None,
                     quiet=False):
    # imported here, not at the top: `curate --help` needs no pyarrow
    from curate.run.executor import RunOptions

    meta = ctx.meta if (ctx := click.get_current_context(silent=True)) is not None else {}
    executor = meta.get("curate.executor") or "local"
    ray_address = meta.get("curate.ray_address") or None
    if ray_address and executor != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    return RunOptions(
        executor=executor,
        ray_address=ray_address,
        compression=compression,
        workers=workers or default_workers(),
        task=task_slice,
        overwrite=overwrite,
        keep_work=keep_work,
        rejects=rejects,
        progress="none" if quiet else progress,
    )
