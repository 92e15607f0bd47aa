"""curate filter: keep the rows for which every rule is true; the others are rejected with
reject_rule (the first rule that failed) and reject_rules (all of them).

Without quantile() this is a map stage. With it, a first phase summarises each shard's values of
every quantile() argument into _work/quantiles/ (see curate/filter/quantiles.py for the bound),
and the filter phase reads the merged values, which are a function of the summaries alone: the
output is the same for any -j or --task split. --dry-run and --explain run the same two passes in
memory and write nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import log
from curate.errors import InputError, UsageError
from curate.filter import quantiles as qt
from curate.filter.compiler import Env, compile_expr
from curate.filter.nodes import Call, walk
from curate.filter.rules import Program, Rule, parse_rule, schema_context
from curate.io.atomic import write_bytes_atomic
from curate.io.dataset import Dataset, check_same_schema, reference_schema
from curate.io.location import Location
from curate.io.parquet import iter_batches, open_parquet
from curate.run.executor import Phase, Task, TaskContext, TaskResult
from curate.stages.base import REJECT_REASON, MapStage, put_column

REJECT_RULE, REJECT_RULES = "reject_rule", "reject_rules"
MERGED = "_work/quantiles.json"


@dataclass(frozen=True)
class FilterParams:
    rules: tuple[tuple[str, str], ...]  # (name, expression), in order
    quantile_k: int = qt.K


def _uses_quantile(trees) -> bool:
    return any(isinstance(n, Call) and n.name == "quantile" for t in trees for n in walk(t))


class Filter(MapStage):
    name = "filter"
    needs_text = False  # a rule may not read text at all

    def __init__(self, dataset: Dataset, rules: list[Rule], k: int = qt.K):
        super().__init__(dataset, FilterParams(tuple((r.name, r.expr) for r in rules), k))
        self.rules = rules
        self._program: Program | None = None
        self._qvalues: dict | None = None
        if dataset.stdin:  # the schema comes with the stream: only syntax can be checked now
            self.uses_quantile = _uses_quantile([parse_rule(r) for r in rules])
            if self.uses_quantile:
                raise UsageError("quantile() needs two passes over the input: give a dataset directory, not '-'")
            return
        if not dataset.shards:
            raise InputError("no Parquet shards to filter", where=dataset.uri)
        self._program = Program(rules, reference_schema(dataset))  # syntax and type errors before any work
        self.uses_quantile = bool(self._program.quantile_pairs)
        if self.uses_quantile:
            check_quantile_columns(dataset, self._program)

    def manifest_params(self) -> dict:
        return {"rules": [{"name": n, "expr": e} for n, e in self.params.rules], "quantile_k": self.params.quantile_k}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_program"] = None  # compiled closures stay behind; workers compile again
        return state

    def program(self, schema: pa.Schema) -> Program:
        p = self._program
        if p is None or not p.schema.equals(schema, check_metadata=False):
            p = self._program = Program(self.rules, schema)
        return p

    # -- phases ------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        tasks = self.plan()
        if not self.uses_quantile:
            return [Phase("main", tasks)]
        return [Phase("quantiles", tasks, "run_quantiles"), Phase("filter", tasks, "run_task")]

    def work(self, ctx: TaskContext, name: str) -> Location:
        return ctx.out.child(f"_work/{name}")

    def run_quantiles(self, task: Task, ctx: TaskContext) -> None:
        prog = self.program(self._schema)
        summaries = shard_summaries(self.dataset, task.spec, prog, self._schema, self.params.quantile_k, ctx.progress)
        loc = self.work(ctx, f"quantiles/{task.name}.json")
        loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
        write_bytes_atomic(loc, qt.dumps(summaries))
        ctx.result.count("quantile_values", sum(s["n"] for s in summaries.values()))

    def _merged(self, out: Location) -> dict:
        """The quantile values, merged once from every shard's summary (any task may do it: the
        result depends on the summaries alone, so concurrent writers write the same bytes)."""
        loc = out.child(MERGED)
        try:
            with loc.fs.open_input_stream(loc.path) as f:
                return json.loads(f.read())
        except (FileNotFoundError, OSError):
            pass
        by_key: dict[str, list[dict]] = {}
        for t in self.plan():
            src = out.child(f"_work/quantiles/{t.name}.json")
            with src.fs.open_input_stream(src.path) as f:
                for key, s in qt.loads(f.read()).items():
                    by_key.setdefault(key, []).append(s)
        prog = self.program(self._schema)
        values = qt.resolve(by_key, prog.quantile_pairs, self.dataset.uri, self.params.quantile_k)
        merged = {"values": [[k, q, v] for (k, q), v in values.items()],
                  "report": qt.report(by_key, values, self.params.quantile_k)}
        write_bytes_atomic(loc, json.dumps(merged, sort_keys=True).encode())
        return merged

    def begin_task(self, task: Task, ctx: TaskContext) -> None:
        if self.uses_quantile and self._qvalues is None:
            self._qvalues = {(k, q): v for k, q, v in self._merged(ctx.out)["values"]}

    # -- one batch ---------------------------------------------------------------------------
    def transform(self, batch: pa.RecordBatch, result) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        if batch.num_rows == 0:
            return batch, None
        prog = self.program(batch.schema)
        fails, _ = prog.evaluate(batch, self._qvalues)
        removed = fails.any(0)
        for i, name in enumerate(prog.names):
            result.count(f"fails:{name}", int(fails[i].sum()))
        if not removed.any():
            return batch, None
        kept = batch.filter(pa.array(~removed))
        rej = batch.filter(pa.array(removed))
        sub = fails[:, removed]
        first = np.argmax(sub, 0)
        names = pa.array(prog.names, pa.string())
        for i, name in enumerate(prog.names):
            result.count(f"removed:{name}", int((first == i).sum()))
        rule = names.take(pa.array(first))
        offsets = np.concatenate([[0], np.cumsum(sub.sum(0))]).astype(np.int32)
        which = np.nonzero(sub.T)[1]  # row by row, rules in order
        rules = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(which, pa.int64())))
        rej = put_column(rej, REJECT_REASON, rule)  # the same as reject_rule, as every stage's rejects have it
        rej = put_column(rej, REJECT_RULE, rule)
        rej = put_column(rej, REJECT_RULES, rules)
        return kept, rej

    def finalize(self, out: Location, results: list[TaskResult]) -> dict:
        extra: dict = {"rules": [{"name": n, "expr": e} for n, e in self.params.rules]}
        if self.uses_quantile:
            extra["quantiles"] = self._merged(out)["report"]
        return {"filter": extra}


# ---- shared by the stage and the dry run -------------------------------------------------------


def check_quantile_columns(dataset: Dataset, prog: Program) -> None:
    """quantile(col, q) of a column that is null in every row: a clear error from the footers,
    before any work (an expression's nulls are only known after the first pass)."""
    from curate.filter.nodes import Col

    cols = {r.arg.name for r in prog.quantile_refs.values() if isinstance(r.arg, Col)}
    for col in sorted(cols):
        rows = nulls = 0
        for s in dataset.shards:
            md = open_parquet(s.loc).metadata
            leaves = [md.schema.column(j).path for j in range(md.num_columns)]  # nested columns have several
            i = leaves.index(col) if col in leaves else -1
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                rows += rg.num_rows
                st = rg.column(i).statistics if i >= 0 else None
                if st is None or not st.has_null_count:
                    return  # unknown: the first pass will tell
                nulls += st.null_count
        if rows and nulls == rows:
            raise InputError(f"quantile({col}, ...): column {col!r} is null in all {rows:,} rows, so it has no "
                             "quantiles", where=dataset.uri,
                             hint="was the scoring step that fills it run? (curate head IN --columns id," + col + ")")


def _shard_batches(dataset: Dataset, index: int, schema: pa.Schema | None, columns: list[str] | None):
    shard = dataset.shards[index]
    pf = open_parquet(shard.loc)
    if schema is not None and index != 0:
        check_same_schema(schema, dataset.shards[0].loc.uri, pf.schema_arrow, shard.loc.uri)
    total = max(pf.metadata.num_rows, 1)
    for b in iter_batches(shard.loc, columns=columns, pf=pf):
        yield b, int(shard.size * b.num_rows / total)


def shard_summaries(dataset: Dataset, index: int, prog: Program, schema, k: int, progress=None) -> dict[str, dict]:
    """One shard's quantile summary of every distinct quantile() argument."""
    from curate.filter.nodes import columns

    args = {key: compile_expr(ref.arg, prog.schema, allow_quantile=False)[0] for key, ref in prog.quantile_refs.items()}
    cols = list(dict.fromkeys(c for ref in prog.quantile_refs.values() for c in columns(ref.arg)))
    vals: dict[str, list[np.ndarray]] = {key: [] for key in args}
    for b, nbytes in _shard_batches(dataset, index, schema, cols):
        env = Env(b)
        for key, c in args.items():
            vals[key].append(qt.values_of(c.fn(env)))
        if progress is not None:
            progress(b.num_rows, nbytes)
    return {key: qt.summarize(np.concatenate(v) if v else np.empty(0), k) for key, v in vals.items()}


# ---- dry run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRun:
    rules: tuple
    group_by: str | None = None
    explain: int = 0
    k: int = qt.K


def dry_run(dataset: Dataset, spec: DryRun, workers: int = 1) -> dict:
    """What the filter would do, without writing anything: the report --dry-run prints."""
    from curate.filter import report

    if dataset.stdin:
        raise UsageError("--dry-run and --explain read a dataset directory, not '-'")
    if not dataset.shards:
        raise InputError("no Parquet shards to filter", where=dataset.uri)
    schema = reference_schema(dataset)
    rules = list(spec.rules)
    prog = Program(rules, schema)
    if spec.group_by is not None and spec.group_by not in schema.names:
        import difflib

        close = difflib.get_close_matches(spec.group_by, schema.names, n=3)
        raise UsageError(f"--group-by {spec.group_by}: no such column" + (f"; did you mean {', '.join(close)}?"
                                                                           if close else ""),
                         hint=schema_context(schema)[0])
    n = len(dataset.shards)
    qvalues, qreport = None, {}
    if prog.quantile_pairs:
        check_quantile_columns(dataset, prog)
        parts = _map(_dry_quantiles, [(dataset, i, rules, schema, spec.k) for i in range(n)], workers, dataset)
        by_key: dict[str, list[dict]] = {}
        for part in parts:
            for key, s in part.items():
                by_key.setdefault(key, []).append(s)
        qvalues = qt.resolve(by_key, prog.quantile_pairs, dataset.uri, spec.k)
        qreport = qt.report(by_key, qvalues, spec.k)
    unit = "n_tokens" if "n_tokens" in schema.names and pc_is_numeric(schema.field("n_tokens").type) else \
        "characters" if "text" in schema.names else None
    tally = report.Tally(len(rules), spec.explain)
    jobs = [(dataset, i, rules, schema, spec, unit, qvalues) for i in range(n)]
    for part in _map(_dry_tally, jobs, workers, dataset):
        tally.merge(part)
    return report.build(tally, rules, unit, qreport, spec.group_by, dataset.uri)


def pc_is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _dry_quantiles(job) -> dict:
    dataset, index, rules, schema, k = job
    return shard_summaries(dataset, index, Program(rules, schema), schema, k)


def _dry_tally(job):
    from curate.filter import report
    from curate.filter.nodes import unparse
    from curate.filter.rules import display_values

    dataset, index, rules, schema, spec, unit, qvalues = job
    prog = Program(rules, schema)
    cols = prog.columns() + ([spec.group_by] if spec.group_by else [])
    cols += ["n_tokens"] if unit == "n_tokens" else ["text"] if unit == "characters" else []
    if spec.explain:
        cols += [c for c in ("id", "text") if c in schema.names]
    cols = list(dict.fromkeys(cols))
    shown = []
    if spec.explain:
        for tree in prog.trees:
            shown.append([(unparse(node), compile_expr(node, schema)[0].fn) for node in display_values(tree)])
    tally = report.Tally(len(rules), spec.explain)
    for b, _ in _shard_batches(dataset, index, schema, cols):
        fails, nulls = prog.evaluate(b, qvalues)
        if unit == "n_tokens":
            tokens = pc.fill_null(b.column("n_tokens"), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif unit == "characters":
            tokens = pc.fill_null(pc.utf8_length(b.column("text")), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            tokens = np.zeros(b.num_rows, np.int64)
        tally.add(fails, nulls, tokens, b.column(spec.group_by) if spec.group_by else None)
        if spec.explain:
            env = Env(b, qvalues)
            for r, c in enumerate(prog.compiled):
                want = tally.wants_examples(r)
                if want and fails[r].any():
                    rows = np.flatnonzero(fails[r])[:want]
                    tally.examples[r].extend(report.examples(b, rows, shown[r], env, c.fn(env)))
    return tally


def _map(fn, jobs: list, workers: int, dataset: Dataset) -> list:
    """fn over jobs in order: in this process, or on a pool of workers for a large enough input."""
    from curate.run.executor import pool_min_bytes

    if workers <= 1 or len(jobs) <= 1 or dataset.total_bytes < pool_min_bytes():
        return [fn(j) for j in jobs]
    import concurrent.futures as cf
    import multiprocessing as mp
    import os

    from curate.run.executor import _init_worker

    ctx = mp.get_context("forkserver")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker,
                                initargs=(None, os.getpid())) as pool:
        return list(pool.map(fn, jobs))


def log_summary(summary, rules: list[Rule]) -> None:
    """One line per rule, in order: the rows it removed (as reject_rule), and all the rows failing it."""
    c = summary.counters
    for r in rules:
        if summary.rows_in:
            removed, fails = c.get("removed:" + r.name, 0), c.get("fails:" + r.name, 0)
            log.info(f"filter: {r.name}: removed {removed:,} (fails {fails:,} rows in all)")
