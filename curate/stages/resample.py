"""curate resample: draw a sample of the input to a budget, with per-document weights (SoftDedup,
DSIR, a column, an expression) and a domain mixture, keeping every document reachable.

Phases (every one a set of tasks over files in OUT/_work, so -j, --task I/N and kill -9 resume give
the same output):
  [softdedup from commonness only]
  stats     per shard: a quantile summary of commonness
  bounds    one task: the K segment boundaries
  segments  per shard: count and sum of commonness per segment
  model     one task: segment means and weights
  [always]
  weights   per shard: per domain rows, tokens and weight sums (log-scaled)
  allocate  one task: the mixture, the epochs checks, and the exact draws of every (shard, domain)
  [soft-cap only: a bound on the domain's n-th ring time, curate/resample/rings.py]
  ring      per shard: the time of its own q_s-th ring (q_s its share of the n draws)
  bound     one task: T = the largest of those (at least n rings come at or before it)
  [without replacement, and soft-cap on the rings up to T: the global top-k, curate/resample/topk.py]
  topk0/cut0, topk1/cut1, topk2/cut2   per shard key histograms / candidates, and one task's cut
  sample    per shard: draw with the shard's seed and write the output (--counts or --materialize)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, UsageError
from curate.io.atomic import write_bytes_atomic
from curate.io.dataset import Dataset, check_same_schema
from curate.io.location import Location
from curate.io.parquet import iter_batches, open_parquet
from curate.resample import plan as pl
from curate.resample import rings as rg
from curate.resample import sampling as sm
from curate.resample import topk
from curate.resample import weights as wt
from curate.run.executor import Phase, Task, TaskContext, TaskResult
from curate.stages.base import MapStage, mark_rejected

SELECTION = "_selection.parquet"
SELECTION_SCHEMA = pa.schema([("id", pa.string()), ("count", pa.int64())])
NEW_COLUMNS = {"counts": ("sample_count",), "materialize": ("epoch", "repeat_index")}


@dataclass(frozen=True)
class ResampleParams:
    weights: str  # as given to --weights
    power: float
    segments: int
    floor_quantile: float
    by: str | None
    mixture: tuple[tuple[str, float], ...] | None  # normalised, sorted
    temperature: float | None
    budget_kind: str  # tokens | rows | fraction
    budget: float
    max_epochs: float = 4.0
    hard_max_epochs: float = 16.0
    replacement: bool = True
    soft_cap: float | None = None
    output: str = "counts"  # counts | materialize

    @property
    def method(self) -> str:
        if self.soft_cap is not None:
            return "softcap"
        return "multinomial" if self.replacement else "gumbel"


def _read_loc(loc: Location):
    with loc.fs.open_input_stream(loc.path) as f:
        return json.loads(f.read())


def _read(ctx: TaskContext, name: str):
    return _read_loc(ctx.out.child(f"_work/{name}"))


def _write(ctx: TaskContext, name: str, obj) -> None:
    loc = ctx.out.child(f"_work/{name}")
    loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
    write_bytes_atomic(loc, json.dumps(obj, sort_keys=True).encode())


class Resample(MapStage):
    name = "resample"
    needs_text = False

    def __init__(self, dataset: Dataset, params: ResampleParams, seed: int):
        if dataset.stdin:
            raise UsageError("resample reads its input twice: give a dataset directory, not '-'")
        if not dataset.shards:
            raise InputError("no Parquet shards to resample", where=dataset.uri)
        super().__init__(dataset, params)
        self.seed = seed
        self.spec = wt.parse_weights(params.weights, params.power, params.segments, params.floor_quantile)
        self.plan()  # reads the reference schema
        schema, where = self._schema, self.dataset.shards[0].loc.uri
        if "id" not in schema.names:
            raise InputError(f"no 'id' column; the columns are: {', '.join(schema.names)}", where=where,
                             hint="`curate ingest` gives every row a stable id")
        wt.check_schema(self.spec, schema, where)
        if params.by is not None and params.by not in schema.names:
            raise InputError(f"--by {params.by}: no such column; the columns are: {', '.join(schema.names)}", where=where)
        for c in NEW_COLUMNS[params.output]:
            if c in schema.names:
                raise InputError(f"the input already has a {c!r} column (from an earlier resample?)", where=where,
                                 hint="resample the earlier stage's input, or drop the column first")
        t = schema.field("n_tokens").type if "n_tokens" in schema.names else None
        self.units_col = "n_tokens" if t is not None and (pa.types.is_integer(t) or pa.types.is_floating(t)) else None
        if self.units_col is None and "text" not in schema.names and not params.budget_kind == "rows":
            raise InputError("a token budget needs an n_tokens column (curate score adds it) or a text column", where=where)
        self.unit_name = "tokens" if self.units_col else "characters"
        self._alloc: dict | None = None
        self._model: dict | None = None
        self._cuts: dict | None = None
        self._out: Location | None = None

    def manifest_params(self) -> dict:
        return asdict(self.params) | {"method": self.params.method}

    # -- phases ------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        shards = self.plan()
        one = [Task("all", None)]
        out = []
        if self.spec.kind == "commonness":
            out += [Phase("stats", shards, "run_stats"), Phase("bounds", one, "run_bounds"),
                    Phase("segments", shards, "run_segments"), Phase("model", one, "run_model")]
        out += [Phase("weights", shards, "run_weights"), Phase("allocate", one, "run_allocate")]
        if self.params.method == "softcap":  # the first n rings of the domain: see curate/resample/rings.py
            out += [Phase("ring", shards, "run_ring"), Phase("bound", one, "run_bound")]
        if self.params.method in ("gumbel", "softcap"):  # the global top-k: see curate/resample/topk.py
            for level in range(3):
                out += [Phase(f"topk{level}", shards, f"run_topk{level}"), Phase(f"cut{level}", one, f"run_cut{level}")]
        return out + [Phase("sample", shards, "run_task")]

    def _columns(self, extra=()) -> list[str]:
        cols = self.spec.columns() + ([self.params.by] if self.params.by else [])
        cols += [self.units_col] if self.units_col else (["text"] if self.params.budget_kind != "rows" else [])
        return list(dict.fromkeys(cols + list(extra)))

    def _numeric(self, index: int, columns: list[str]):
        """(first row, batch) of one shard's few columns the weights need."""
        shard = self.dataset.shards[index]
        pf = open_parquet(shard.loc)
        if index != 0:
            check_same_schema(self._schema, self.dataset.shards[0].loc.uri, pf.schema_arrow, shard.loc.uri)
        row = 0
        for b in iter_batches(shard.loc, columns=columns, pf=pf):
            yield row, b
            row += b.num_rows

    def _units(self, b: pa.RecordBatch, row0: int, where: str) -> np.ndarray:
        if self.units_col:
            v = pc.cast(b.column(self.units_col), pa.float64()).to_numpy(zero_copy_only=False)
            bad = np.isnan(v) | (v < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"n_tokens is null, NaN or negative in {int(bad.sum()):,} row(s); the first is row {row0 + i}",
                                 where=where, hint="rerun curate score on this input")
            return v
        if "text" in b.schema.names:
            return pc.fill_null(pc.utf8_length(b.column("text")), 0).to_numpy(zero_copy_only=False).astype(np.float64)
        return np.ones(b.num_rows)

    def _domains(self, b: pa.RecordBatch, row0: int, where: str) -> tuple[np.ndarray, list[str]]:
        if not self.params.by:
            return np.zeros(b.num_rows, np.int64), [pl.ALL]
        col = b.column(self.params.by)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError(f"--by {self.params.by}: null in {col.null_count:,} row(s); the first is row {row0 + i}",
                             where=where, hint="fill the column (every document needs a domain) or filter those rows")
        enc = pc.dictionary_encode(pc.cast(col, pa.string()))
        return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()

    def _shard_arrays(self, index: int, columns: list[str]):
        """Yield (row0, batch, log-weights, units, domain names per row) for one shard."""
        where = self.dataset.shards[index].loc.uri
        for row0, b in self._numeric(index, columns):
            units = self._units(b, row0, where)
            lw = wt.log_weights(self.spec, b, units, self._model, row0, where)
            codes, names = self._domains(b, row0, where)
            yield row0, b, lw, units, codes, names

    # -- softdedup: segments of commonness ---------------------------------------------------
    def run_stats(self, task: Task, ctx: TaskContext) -> None:
        from curate.filter import quantiles as qt

        vals = []
        for _, b, _, _, _, _ in self._shard_arrays(task.spec, self._columns()):
            v = wt.raw_values(self.spec, b)
            vals.append(v[~np.isnan(v)])
            ctx.progress(b.num_rows, 0)
        _write(ctx, f"stats/{task.spec:06d}.json", qt.summarize(np.concatenate(vals) if vals else np.empty(0)))

    def run_bounds(self, task: Task, ctx: TaskContext) -> None:
        sums = [_read(ctx, f"stats/{i:06d}.json") for i in range(len(self.dataset.shards))]
        if sum(s["n"] for s in sums) == 0:
            raise InputError("--weights softdedup: commonness is null in every row", where=self.dataset.uri,
                             hint="curate score IN OUT --commonness MODEL fills it")
        _write(ctx, "bounds.json", wt.segment_model(sums, None, None, self.spec))

    def run_segments(self, task: Task, ctx: TaskContext) -> None:
        model = _read(ctx, "bounds.json")
        k = self.spec.segments
        counts, sums = np.zeros(k, np.int64), np.zeros(k)
        for _, b, _, _, _, _ in self._shard_arrays(task.spec, self._columns()):
            v = wt.raw_values(self.spec, b)
            v = v[~np.isnan(v)]
            s = wt.segment_of(v, model)
            counts += np.bincount(s, minlength=k)
            sums += np.bincount(s, weights=v, minlength=k)
            ctx.progress(b.num_rows, 0)
        _write(ctx, f"segments/{task.spec:06d}.json", {"counts": counts.tolist(), "sums": sums.tolist()})

    def run_model(self, task: Task, ctx: TaskContext) -> None:
        sums = [_read(ctx, f"stats/{i:06d}.json") for i in range(len(self.dataset.shards))]
        parts = [_read(ctx, f"segments/{i:06d}.json") for i in range(len(self.dataset.shards))]
        counts = np.sum([p["counts"] for p in parts], axis=0)
        total = np.sum([p["sums"] for p in parts], axis=0)
        # Sum in shard order, in float64: the same bytes from any run.
        _write(ctx, "model.json", wt.segment_model(sums, counts, total, self.spec))

    def _load_model(self, ctx: TaskContext) -> None:
        if self.spec.kind == "commonness" and self._model is None:
            self._model = _read(ctx, "model.json")

    # -- weights and allocation ----------------------------------------------------------------
    def run_weights(self, task: Task, ctx: TaskContext) -> None:
        self._load_model(ctx)
        acc: dict[str, dict] = {}
        for _, b, lw, units, codes, names in self._shard_arrays(task.spec, self._columns()):
            for j, d in enumerate(names):
                sel = codes == j
                if not sel.any():
                    continue
                o = acc.setdefault(d, {"rows": 0, "units": 0.0, "n_pos": 0, "parts": []})
                o["rows"] += int(sel.sum())
                o["units"] += float(units[sel].sum())
                x, u = lw[sel], units[sel]
                fin = np.isfinite(x)
                o["n_pos"] += int(fin.sum())
                if fin.any():
                    m = float(x[fin].max())
                    e = np.exp(x[fin] - m)
                    o["parts"].append((m, float(e.sum()), float((e * u[fin]).sum())))
            ctx.progress(b.num_rows, 0)
        out = {}
        for d, o in acc.items():
            m = max((p[0] for p in o["parts"]), default=-math.inf)
            s0 = sum(p[1] * math.exp(p[0] - m) for p in o["parts"]) if o["parts"] else 0.0
            s1 = sum(p[2] * math.exp(p[0] - m) for p in o["parts"]) if o["parts"] else 0.0
            out[d] = {"rows": o["rows"], "units": o["units"], "n_pos": o["n_pos"], "m": m if o["parts"] else None,
                      "s0": s0, "s1": s1}
        _write(ctx, f"weights/{task.spec:06d}.json", out)

    def run_allocate(self, task: Task, ctx: TaskContext) -> None:
        parts = []
        for i in range(len(self.dataset.shards)):
            part = _read(ctx, f"weights/{i:06d}.json")
            for x in part.values():
                x["m"] = -math.inf if x["m"] is None else x["m"]
            parts.append(part)
        p = self.params
        budget = pl.Budget(p.budget_kind, p.budget)
        alloc = pl.allocate(parts, budget, dict(p.mixture) if p.mixture else None, p.temperature, p.by,
                            p.replacement, p.max_epochs, p.hard_max_epochs, self.seed, self.dataset.uri)
        alloc["unit"] = "rows" if budget.in_rows else self.unit_name
        if self.spec.kind != "uniform" and sum(x["n_pos"] for part in parts for x in part.values()) == 0:
            raise InputError(f"--weights {self.spec.label}: every weight is zero", where=self.dataset.uri)
        _write(ctx, "allocation.json", alloc)

    # -- global Gumbel top-k (without replacement) -------------------------------------------
    def _gumbel_keys(self, index: int, j: int, lw: np.ndarray, alloc: dict) -> np.ndarray:
        """The sortable keys log w - max log w + Gumbel of one shard's documents of domain j (in row
        order), from the generator of (seed, shard, domain): the same in every phase that asks."""
        rng = sm.rng_for(self.seed, index, j, "gumbel")
        m = alloc["info"][alloc["domains"][j]]["m"]
        return topk.sortable(lw - m + rng.gumbel(size=len(lw)))

    def _shard_lw(self, index: int, alloc: dict) -> tuple[np.ndarray, np.ndarray]:
        """(log-weights, global domain index) of every row of a shard."""
        lws, doms = [], []
        gindex = {d: j for j, d in enumerate(alloc["domains"])}
        for _, _b, lw, _u, codes, names in self._shard_arrays(index, self._prepass_columns()):
            lws.append(lw)
            doms.append(np.array([gindex[d] for d in names], np.int64)[codes] if len(names) else codes)
        return (np.concatenate(lws) if lws else np.empty(0)), (np.concatenate(doms) if doms else np.empty(0, np.int64))

    def _ring_weights(self, j: int, lw: np.ndarray, alloc: dict) -> np.ndarray:
        """Clock rates w / max w of the domain (the global max: the same scale in every shard)."""
        return np.exp(lw - alloc["info"][alloc["domains"][j]]["m"])

    def _shard_keys(self, index: int, alloc: dict, arrays=None):
        """(domain index, rows, keys, ring index or None) for every domain with draws: a key per
        document (Gumbel), or per ring up to the bound T, key = -time (soft-cap)."""
        lw, dom = arrays or self._shard_lw(index, alloc)
        bound = _read_loc(self._out.child("_work/rings/bound.json")) if self.params.method == "softcap" else None
        for j, d in enumerate(alloc["domains"]):
            if alloc["info"][d].get("draws", 0) == 0:
                continue
            rows = np.flatnonzero((dom == j) & np.isfinite(lw))
            if bound is None:
                yield j, rows, self._gumbel_keys(index, j, lw[rows], alloc), None
                continue
            w = self._ring_weights(j, lw[rows], alloc)
            doc, ring, t = rg.rings(w, rows, rg.stream_key(self.seed, index, j), self.params.soft_cap, bound[str(j)])
            yield j, rows[doc], topk.sortable(-t), ring

    def run_ring(self, task: Task, ctx: TaskContext) -> None:
        alloc = self.begin_sample(ctx)
        lw, dom = self._shard_lw(task.spec, alloc)
        out = {}
        for j, q in enumerate(alloc["quotas"][task.spec]):
            if q:
                rows = np.flatnonzero((dom == j) & np.isfinite(lw))
                w = self._ring_weights(j, lw[rows], alloc)
                out[j] = rg.nth_time(w, rows, rg.stream_key(self.seed, task.spec, j), self.params.soft_cap, q)
        ctx.progress(0, 0)
        _write(ctx, f"rings/{task.spec:06d}.json", out)

    def run_bound(self, task: Task, ctx: TaskContext) -> None:
        parts = [_read(ctx, f"rings/{i:06d}.json") for i in range(len(self.dataset.shards))]
        alloc = _read(ctx, "allocation.json")
        bound = {}
        for j, d in enumerate(alloc["domains"]):
            if alloc["info"][d].get("draws", 0):
                times = [p[str(j)] for p in parts if str(j) in p]
                if not all(math.isfinite(t) for t in times):
                    raise InputError(f"--soft-cap {self.params.soft_cap:g}: a document would need a waiting time "
                                     "beyond float range", where=self.dataset.uri, hint="lower --soft-cap or the budget")
                bound[j] = max(times)
        _write(ctx, "rings/bound.json", bound)

    def _topk_pass(self, task: Task, ctx: TaskContext, level: int) -> None:
        alloc = self.begin_sample(ctx)
        cuts = _read(ctx, f"topk/cut{level - 1}.json") if level else {}
        out = {}
        for j, rows, u, ring in self._shard_keys(task.spec, alloc):
            if level == 0:
                out[j] = topk.histogram(topk.level_bins(u, 0, None))
            elif level == 1:
                out[j] = topk.histogram(topk.level_bins(u, 1, cuts[str(j)]["prefix"]))
            else:
                keep = (u >> np.uint64(32)) == np.uint64(cuts[str(j)]["prefix"])
                out[j] = [[int(k), task.spec, int(r)] for k, r in zip(u[keep], rows[keep], strict=True)]
                if ring is not None:
                    out[j] = [c + [int(x)] for c, x in zip(out[j], ring[keep], strict=True)]
        ctx.progress(0, 0)
        _write(ctx, f"topk/{level}/{task.spec:06d}.json", out)

    def _cut(self, ctx: TaskContext, level: int) -> None:
        alloc = _read(ctx, "allocation.json")
        prev = _read(ctx, f"topk/cut{level - 1}.json") if level else {}
        parts = [_read(ctx, f"topk/{level}/{i:06d}.json") for i in range(len(self.dataset.shards))]
        cuts = {}
        for j, d in enumerate(alloc["domains"]):
            n = alloc["info"][d].get("draws", 0)
            if n == 0:
                continue
            above = prev[str(j)]["above"] if level else 0
            got = [p.get(str(j), []) for p in parts]
            if level == 2:
                cuts[j] = {"cut": topk.threshold([c for g in got for c in g], n - above)}
                continue
            b, more = topk.cut(got, n - above)
            prefix = b if level == 0 else (prev[str(j)]["prefix"] << 16) | b
            cuts[j] = {"prefix": prefix, "above": above + more}
        _write(ctx, f"topk/cut{level}.json", cuts)

    def run_topk0(self, task, ctx):
        self._topk_pass(task, ctx, 0)

    def run_topk1(self, task, ctx):
        self._topk_pass(task, ctx, 1)

    def run_topk2(self, task, ctx):
        self._topk_pass(task, ctx, 2)

    def run_cut0(self, task, ctx):
        self._cut(ctx, 0)

    def run_cut1(self, task, ctx):
        self._cut(ctx, 1)

    def run_cut2(self, task, ctx):
        self._cut(ctx, 2)

    # -- sample ------------------------------------------------------------------------------
    def begin_sample(self, ctx: TaskContext) -> dict:
        self._load_model(ctx)
        self._out = ctx.out
        if self._alloc is None:
            self._alloc = _read(ctx, "allocation.json")
        return self._alloc

    def _prepass_columns(self) -> list[str]:
        """The sample phase's first read: no text unless commonness needs it (empty documents);
        characters as units are counted from the batches of the second read."""
        cols = self._columns()
        if not self.units_col and self.spec.kind != "commonness":
            cols = [c for c in cols if c != "text" or c in self.spec.columns() or c == self.params.by]
        return cols

    def shard_counts(self, index: int, alloc: dict):
        """How many times each row of a shard is drawn; its domains, segments and units (None when
        they come from the text)."""
        lws, unitss, doms, seg_vals = [], [], [], []
        gindex = {d: j for j, d in enumerate(alloc["domains"])}
        cols = self._prepass_columns()
        for _, b, lw, units, codes, names in self._shard_arrays(index, cols):
            lws.append(lw)
            unitss.append(units)
            doms.append(np.array([gindex[d] for d in names], np.int64)[codes] if len(names) else codes)
            if self.spec.kind == "commonness":
                seg_vals.append(wt.raw_values(self.spec, b))
        lw = np.concatenate(lws) if lws else np.empty(0)
        dom = np.concatenate(doms) if doms else np.empty(0, np.int64)
        units = (np.concatenate(unitss) if unitss else np.empty(0)) if (self.units_col or "text" in cols) else None
        counts = np.zeros(len(lw), np.int64)
        method = self.params.method
        if method in ("gumbel", "softcap"):
            if self._cuts is None:
                self._cuts = _read_loc(self._out.child("_work/topk/cut2.json"))
            for j, rows, u, ring in self._shard_keys(index, alloc, (lw, dom)):
                sel = topk.selected(u, index, rows, self._cuts[str(j)]["cut"], ring)
                counts += np.bincount(rows[sel], minlength=len(counts))
            segs = np.concatenate(seg_vals) if seg_vals else None
            return counts, dom, segs, units
        for j, q in enumerate(alloc["quotas"][index]):
            if q == 0:
                continue
            idx = np.flatnonzero(dom == j)
            rng = sm.rng_for(self.seed, index, j, method)
            counts[idx] = sm.draw(method, lw[idx], q, rng, self.params.soft_cap or 0.0)
        segs = np.concatenate(seg_vals) if seg_vals else None
        return counts, dom, segs, units

    def shard_stats(self, alloc: dict, counts, dom, segs, units) -> dict:
        """Per domain and per commonness segment: rows, draws, units in and drawn; the max count."""
        drawn_units = units * counts
        stats: dict = {"domains": {}, "max_count": int(counts.max()) if len(counts) else 0}
        for j, d in enumerate(alloc["domains"]):
            sel = dom == j
            if sel.any():
                stats["domains"][d] = {"rows": int(sel.sum()), "draws": int(counts[sel].sum()),
                                       "docs_drawn": int((counts[sel] > 0).sum()), "units_in": float(units[sel].sum()),
                                       "units_drawn": float(drawn_units[sel].sum())}
        if segs is not None:
            ok = ~np.isnan(segs)
            s = wt.segment_of(segs[ok], self._model)
            k = self.spec.segments
            stats["segments"] = {"units_in": np.bincount(s, units[ok], k).tolist(),
                                 "units_drawn": np.bincount(s, drawn_units[ok], k).tolist()}
        return stats

    def run_task(self, task: Task, ctx: TaskContext) -> None:
        alloc = self.begin_sample(ctx)
        counts, dom, segs, units = self.shard_counts(task.spec, alloc)
        text_units = [] if units is None else None
        res = ctx.result
        res.count("draws", int(counts.sum()))
        shard = self.dataset.shards[task.spec]
        pf = open_parquet(shard.loc)
        total = max(pf.metadata.num_rows, 1)
        out = rej = None
        sel_ids, sel_counts = [], []
        row = 0
        materialize = self.params.output == "materialize"
        try:
            for b in iter_batches(shard.loc, pf=pf):
                n = b.num_rows
                c = counts[row:row + n]
                row += n
                nbytes = int(shard.size * n / total)
                res.rows_in += n
                res.bytes_in += nbytes
                if text_units is not None:
                    text_units.append(self._units(b, row - n, shard.loc.uri))
                picked = np.flatnonzero(c > 0)
                sel_ids.append(b.column("id").take(pa.array(picked)))
                sel_counts.append(c[picked])
                if materialize:
                    kept, rows = self._repeat(b, c)
                    res.rows_out += len(picked)
                    res.count("rows_written", rows)
                    unsampled = n - len(picked)
                    if unsampled:
                        res.rows_rejected += unsampled
                        res.count("not_sampled", unsampled)
                        if ctx.rejects is not None:
                            r = mark_rejected(b.filter(pa.array(c == 0)), "not_sampled")
                            rej = rej or ctx.open_rejects(task.name, r.schema)
                            rej.write(r)
                else:
                    if len(c) and c.max() > np.iinfo(np.int32).max:  # the planner refuses such budgets
                        raise RuntimeError(f"a sample_count of {int(c.max())} does not fit int32")
                    kept = b.append_column("sample_count", pa.array(c.astype(np.int32)))
                    res.rows_out += n
                out = out or ctx.open_output(task.name, kept.schema)
                out.write(kept)
                ctx.progress(n, nbytes)
            if row != len(counts):
                raise InputError("the shard changed while it was being resampled", where=shard.loc.uri)
            if text_units is not None:
                units = np.concatenate(text_units) if text_units else np.empty(0)
            res.extra = self.shard_stats(alloc, counts, dom, segs, units)
            if out is None:
                schema = self._schema.append(pa.field("sample_count", pa.int32())) if not materialize else \
                    self._schema.append(pa.field("epoch", pa.int32())).append(pa.field("repeat_index", pa.int32()))
                out = ctx.open_output(task.name, schema)
            res.bytes_out += out.close()
            res.outputs.append(task.name)
            if rej is not None:
                rej.close()
        except BaseException:
            for w in (out, rej):
                if w is not None:
                    w.abort()
            raise
        ids = pa.concat_arrays(sel_ids) if sel_ids else pa.array([], pa.string())
        t = pa.table({"id": pc.cast(ids, pa.string()),
                      "count": pa.array(np.concatenate(sel_counts) if sel_counts else np.empty(0, np.int64))})
        from curate.stages.dedup_common import _write_table_atomic

        loc = ctx.out.child(f"_work/selection/{task.spec:06d}.parquet")
        loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
        _write_table_atomic(loc, [(0, t.cast(SELECTION_SCHEMA))], SELECTION_SCHEMA)

    @staticmethod
    def _repeat(b: pa.RecordBatch, c: np.ndarray) -> tuple[pa.RecordBatch, int]:
        """Each row c times in a row: repeat_index 0..c-1, epoch = repeat_index + 1 (a document's k-th
        draw belongs to the k-th pass over it)."""
        idx = np.repeat(np.arange(len(c)), c)
        starts = np.repeat(np.cumsum(c) - c, c)
        rep = (np.arange(len(idx)) - starts).astype(np.int32)
        out = b.take(pa.array(idx, pa.int64()))
        out = out.append_column("epoch", pa.array(rep + 1)).append_column("repeat_index", pa.array(rep))
        return out, len(idx)

    def finalize(self, out: Location, results: list[TaskResult]) -> dict:
        from curate.io.parquet import ShardWriter

        w = ShardWriter(out.child(SELECTION), SELECTION_SCHEMA)
        for i in range(len(self.dataset.shards)):
            for b in iter_batches(out.child(f"_work/selection/{i:06d}.parquet")):
                w.write(b)
        w.close()
        alloc = _read_loc(out.child("_work/allocation.json"))
        if self.spec.kind == "commonness":
            self._model = _read_loc(out.child("_work/model.json"))
        return {"resample": summarize(alloc, results, self, out)}


def summarize(alloc: dict, results: list[TaskResult], stage: Resample, out: Location) -> dict:
    """What the manifest records: seed, weights, the mixture asked for and realised, epochs, repetition."""
    doms: dict[str, dict] = {}
    segs_in = segs_drawn = None
    max_count = 0
    for r in results:
        max_count = max(max_count, r.extra.get("max_count", 0))
        for d, x in r.extra.get("domains", {}).items():
            o = doms.setdefault(d, {k: 0 for k in x})
            for k, v in x.items():
                o[k] += v
        s = r.extra.get("segments")
        if s:
            segs_in = np.add(segs_in if segs_in is not None else 0, s["units_in"])
            segs_drawn = np.add(segs_drawn if segs_drawn is not None else 0, s["units_drawn"])
    unit = alloc["unit"]
    total_drawn = sum(x["units_drawn"] for x in doms.values()) or 1.0
    total_draws = sum(x["draws"] for x in doms.values()) or 1
    per_domain = {}
    for d in alloc["domains"]:
        x, i = doms.get(d, {}), alloc["info"][d]
        drawn = x.get("draws", 0) if unit == "rows" else x.get("units_drawn", 0.0)
        share = drawn / (total_draws if unit == "rows" else total_drawn)
        per_domain[d or "(all)"] = {
            "requested_share": alloc["mixture"][d], "realised_share": share, "target": i["target"],
            "epochs": i["epochs"], "draws": x.get("draws", 0), "documents_drawn": x.get("docs_drawn", 0),
            "documents_with_weight": i["positive_weight_docs"], "max_expected_count": i["max_expected_count"],
            "rows_in": x.get("rows", 0), f"{'tokens' if unit == 'rows' else unit}_in": x.get("units_in", 0.0),
            f"{'tokens' if unit == 'rows' else unit}_drawn": x.get("units_drawn", 0.0),
        }
    spec = stage.spec
    weights: dict = {"mode": spec.label}
    if spec.kind in ("commonness", "dup_count"):
        weights["power"] = spec.power
    if spec.kind == "commonness" and stage._model is not None:
        m = stage._model
        weights.update(segments=spec.segments, floor_quantile=spec.floor_quantile, floor_value=m["floor_value"],
                       cap=m["cap"])
        weights["segment_table"] = [
            {"segment": j, "upper": (m["boundaries"][j] if j < len(m["boundaries"]) else None), "docs": m["counts"][j],
             "mean_commonness": m["means"][j], "weight": m["weights"][j],
             "tokens_in": float(segs_in[j]) if segs_in is not None else None,
             "tokens_drawn": float(segs_drawn[j]) if segs_drawn is not None else None}
            for j in range(spec.segments) if m["counts"][j]]
    return {"seed": stage.seed, "method": stage.params.method, "soft_cap": stage.params.soft_cap,
            "output": stage.params.output, "selection_file": SELECTION, "unit": unit, "budget": alloc["budget"],
            "draws": int(sum(x.get("draws", 0) for x in doms.values())),
            "units_drawn": float(sum(x.get("units_drawn", 0.0) for x in doms.values())),
            "max_repetition": int(max_count), "weights": weights, "domains": per_domain}
