"""--dry-run and --explain: per rule, the documents and tokens it removes, those only it removes,
pairwise overlaps, a breakdown by a column, and removed examples with the values that failed.

A Tally is one shard's counts (numpy arrays, so shards run anywhere and merge in shard order)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SNIPPET = 120  # characters of text (and of long string values) shown per example
GROUP_TYPES = "strings, numbers, booleans, dates, timestamps or binary values"


def check_group_by(schema: pa.Schema, column: str) -> None:
    """--group-by counts rows per value: a missing column, or one of lists or structs (whose values
    cannot be counted one by one), is a usage error before any work."""
    from curate.errors import UsageError
    from curate.filter.compiler import close_names

    if column not in schema.names:
        close = close_names(column, schema.names)
        raise UsageError(f"--group-by {column}: no such column" + (f"; did you mean {', '.join(close)}?"
                                                                   if close else ""),
                         hint=f"the columns are: {', '.join(schema.names) or '(none)'}")
    t = schema.field(column).type
    if not _groupable(t):
        ok = [f.name for f in schema if _groupable(f.type)]
        raise UsageError(f"--group-by {column}: the column is {t}; --group-by takes a column of {GROUP_TYPES}",
                         hint=f"columns it can take: {', '.join(ok[:20])}" + (", ..." if len(ok) > 20 else "")
                         if ok else None)


def _groupable(t: pa.DataType) -> bool:
    try:
        pc.dictionary_encode(pa.array([], t))  # the kernel Tally uses; none for lists, structs, maps
    except pa.ArrowNotImplementedError:
        return False
    return True


class Tally:
    def __init__(self, nrules: int, explain: int = 0):
        r = nrules
        self.rows = self.tokens = 0
        self.removed_docs = self.removed_tokens = 0
        self.fail_docs, self.fail_tokens = np.zeros(r, np.int64), np.zeros(r, np.int64)
        self.only_docs, self.only_tokens = np.zeros(r, np.int64), np.zeros(r, np.int64)
        self.first_docs, self.null_docs = np.zeros(r, np.int64), np.zeros(r, np.int64)
        self.pair_docs, self.pair_tokens = np.zeros((r, r), np.int64), np.zeros((r, r), np.int64)
        self.group_keys: dict = {}  # value -> index, in order of first appearance
        self.g = np.zeros((0, 4 + r), np.int64)  # docs, tokens, removed docs, removed tokens, per-rule docs
        self.explain = explain
        self.examples: list[list[dict]] = [[] for _ in range(r)]

    def add(self, fails: np.ndarray, nulls: np.ndarray, tokens: np.ndarray, groups=None) -> None:
        n = fails.shape[1]
        self.rows += n
        self.tokens += int(tokens.sum())
        any_ = fails.any(0)
        per_row = fails.sum(0)
        self.removed_docs += int(any_.sum())
        self.removed_tokens += int(tokens[any_].sum())
        f64 = fails.astype(np.float64)  # BLAS matmul; exact below 2**53
        self.fail_docs += fails.sum(1)
        self.fail_tokens += (f64 @ tokens.astype(np.float64)).astype(np.int64)
        only = fails & (per_row == 1)
        self.only_docs += only.sum(1)
        self.only_tokens += (only.astype(np.float64) @ tokens.astype(np.float64)).astype(np.int64)
        self.null_docs += nulls.sum(1)
        if fails.shape[0]:
            first = np.argmax(fails, 0)[any_]
            self.first_docs += np.bincount(first, minlength=fails.shape[0])
        self.pair_docs += (f64 @ f64.T).astype(np.int64)
        self.pair_tokens += ((f64 * tokens) @ f64.T).astype(np.int64)
        if groups is not None:
            self._add_groups(groups, fails, any_, tokens)

    def _add_groups(self, column, fails, any_, tokens) -> None:
        enc = pc.dictionary_encode(column, null_encoding="encode")
        local = enc.indices.to_numpy(zero_copy_only=False)
        ids = np.array([self.group_keys.setdefault(v, len(self.group_keys)) for v in enc.dictionary.to_pylist()],
                       np.int64)
        if len(self.group_keys) > len(self.g):
            self.g = np.vstack([self.g, np.zeros((len(self.group_keys) - len(self.g), self.g.shape[1]), np.int64)])
        g = ids[local] if len(local) else np.empty(0, np.int64)
        size = len(self.g)
        self.g[:, 0] += np.bincount(g, minlength=size)
        self.g[:, 1] += np.bincount(g, weights=tokens, minlength=size).astype(np.int64)
        self.g[:, 2] += np.bincount(g[any_], minlength=size)
        self.g[:, 3] += np.bincount(g[any_], weights=tokens[any_], minlength=size).astype(np.int64)
        for r in range(fails.shape[0]):
            self.g[:, 4 + r] += np.bincount(g[fails[r]], minlength=size)

    def wants_examples(self, r: int) -> int:
        return max(0, self.explain - len(self.examples[r]))

    def merge(self, other: Tally) -> None:
        for k in ("rows", "tokens", "removed_docs", "removed_tokens"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k in ("fail_docs", "fail_tokens", "only_docs", "only_tokens", "first_docs", "null_docs", "pair_docs",
                  "pair_tokens"):
            getattr(self, k).__iadd__(getattr(other, k))
        if other.group_keys:
            ids = np.array([self.group_keys.setdefault(v, len(self.group_keys)) for v in other.group_keys], np.int64)
            if len(self.group_keys) > len(self.g):
                self.g = np.vstack([self.g, np.zeros((len(self.group_keys) - len(self.g), self.g.shape[1]), np.int64)])
            np.add.at(self.g, ids, other.g)
        for r, ex in enumerate(other.examples):
            self.examples[r].extend(ex[: self.wants_examples(r)])


def examples(batch: pa.RecordBatch, rows: np.ndarray, shown: list[tuple[str, object]], env, result) -> list[dict]:
    """Removed rows: id, a text snippet, the rule's result (false or null) and the values it tested."""
    idx = pa.array(rows, pa.int64())
    cols: dict[str, list] = {}
    for label, fn in shown:
        v = fn(env)
        cols[label] = [v.as_py()] * len(rows) if isinstance(v, pa.Scalar) else v.take(idx).to_pylist()
    res = [result.as_py()] * len(rows) if isinstance(result, pa.Scalar) else result.take(idx).to_pylist()
    ids = batch.column("id").take(idx).to_pylist() if "id" in batch.schema.names else [None] * len(rows)
    texts = batch.column("text").take(idx).to_pylist() if "text" in batch.schema.names else [None] * len(rows)
    out = []
    for k in range(len(rows)):
        out.append({"id": ids[k], "result": res[k], "values": {lab: _short(cols[lab][k]) for lab in cols},
                    "text": _short(texts[k])})
    return out


def _short(v):
    if isinstance(v, str) and len(v) > SNIPPET:
        return v[: SNIPPET - 1] + "…"
    return v


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 2) if b else 0.0


def build(t: Tally, rules, token_unit: str | None, quantiles: dict, group_by: str | None, source: str) -> dict:
    names = [r.name for r in rules]
    out = {
        "input": source,
        "documents": t.rows,
        "tokens": t.tokens if token_unit else None,
        "token_unit": token_unit,
        "kept": {"documents": t.rows - t.removed_docs, "tokens": t.tokens - t.removed_tokens if token_unit else None},
        "removed": {"documents": t.removed_docs, "tokens": t.removed_tokens if token_unit else None,
                    "documents_pct": _pct(t.removed_docs, t.rows), "tokens_pct": _pct(t.removed_tokens, t.tokens)},
        "quantiles": quantiles,
        "rules": [],
        "overlaps": [],
    }
    for i, r in enumerate(rules):
        out["rules"].append({
            "name": r.name, "expr": r.expr,
            "documents": int(t.fail_docs[i]), "documents_pct": _pct(int(t.fail_docs[i]), t.rows),
            "tokens": int(t.fail_tokens[i]) if token_unit else None,
            "tokens_pct": _pct(int(t.fail_tokens[i]), t.tokens) if token_unit else None,
            "only_documents": int(t.only_docs[i]), "only_tokens": int(t.only_tokens[i]) if token_unit else None,
            "first_documents": int(t.first_docs[i]), "null_documents": int(t.null_docs[i]),
        })
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            out["overlaps"].append({"rules": [names[i], names[j]], "documents": int(t.pair_docs[i, j]),
                                    "tokens": int(t.pair_tokens[i, j]) if token_unit else None})
    if group_by:
        groups = []
        for v, k in t.group_keys.items():
            row = t.g[k]
            groups.append({"value": v, "documents": int(row[0]), "tokens": int(row[1]) if token_unit else None,
                           "removed_documents": int(row[2]), "removed_documents_pct": _pct(int(row[2]), int(row[0])),
                           "removed_tokens": int(row[3]) if token_unit else None,
                           "rules": {n: int(row[4 + i]) for i, n in enumerate(names)}})
        groups.sort(key=lambda g: (-g["documents"], str(g["value"])))
        out["group_by"] = {"column": group_by, "groups": groups}
    if t.explain:
        out["explain"] = {n: t.examples[i] for i, n in enumerate(names)}
    return out


# ---- text rendering ------------------------------------------------------------------------

GROUPS_SHOWN = 25


def render(rep: dict, console=None, summary: bool = True) -> None:
    from rich.table import Table

    from curate import log

    c = console or log.stdout_console(160)
    unit = rep["token_unit"]
    tok = {"n_tokens": "tokens", "characters": "chars"}.get(unit or "", "")
    if summary:
        c.print(f"[bold]curate filter --dry-run[/bold] {esc(rep['input'])}: {rep['documents']:,} documents"
                + (f", {rep['tokens']:,} {tok}" + (" (n_tokens)" if unit == "n_tokens" else " (characters of text)")
                   if unit else "") + "; nothing written", highlight=False)
        for label, q in rep["quantiles"].items():
            how = "exact" if q["exact"] else f"rank within +{q['rank_error_max']:,} of {q['values']:,} values"
            c.print(f"  {esc(label)} = {q['value']:.6g}  ({how})", highlight=False)
        t = Table(title="what each rule removes", title_justify="left")
        for col, just in (("rule", "left"), ("documents", "right"), ("%", "right")) + (
                ((tok, "right"), ("% ", "right")) if unit else ()) + (("only this rule", "right"),
                                                                     ("null", "right")):
            t.add_column(col, justify=just, overflow="fold")
        for r in rep["rules"]:
            name = r["name"] if r["name"] == " ".join(r["expr"].split()) else f"{r['name']}: {r['expr']}"
            cells = [esc(name), f"{r['documents']:,}", f"{r['documents_pct']:.2f}"]
            if unit:
                cells += [f"{r['tokens']:,}", f"{r['tokens_pct']:.2f}"]
            cells += [f"{r['only_documents']:,}", f"{r['null_documents']:,}"]
            t.add_row(*cells)
        rm, kept = rep["removed"], rep["kept"]
        t.add_section()
        t.add_row("any rule (removed)", f"{rm['documents']:,}", f"{rm['documents_pct']:.2f}",
                  *([f"{rm['tokens']:,}", f"{rm['tokens_pct']:.2f}"] if unit else []), "", "", style="bold")
        t.add_row("kept", f"{kept['documents']:,}", f"{_pct(kept['documents'], rep['documents']):.2f}",
                  *([f"{kept['tokens']:,}", f"{_pct(kept['tokens'], rep['tokens']):.2f}"] if unit else []), "", "")
        c.print(t)
        if len(rep["rules"]) > 1:
            _render_overlaps(c, rep)
        if "group_by" in rep:
            _render_groups(c, rep)
    if "explain" in rep:
        _render_examples(c, rep)


def _render_overlaps(c, rep) -> None:
    from rich.table import Table

    names = [r["name"] for r in rep["rules"]]
    short = [f"r{i + 1}" for i in range(len(names))]
    pair = {tuple(o["rules"]): o["documents"] for o in rep["overlaps"]}
    t = Table(title="removed by both rules (documents)", title_justify="left")
    t.add_column("rule")
    for s in short:
        t.add_column(s, justify="right")
    for i, n in enumerate(names):
        row = []
        for j, m in enumerate(names):
            row.append(f"{rep['rules'][i]['documents']:,}" if i == j else f"{pair.get((n, m), pair.get((m, n), 0)):,}")
        t.add_row(f"{short[i]} {esc(n)}", *row)
    c.print(t)


def _render_groups(c, rep) -> None:
    from rich.table import Table

    gb = rep["group_by"]
    groups = gb["groups"]
    t = Table(title=f"by {esc(gb['column'])} (removed documents per rule)", title_justify="left")
    t.add_column(esc(gb["column"]), overflow="fold")
    for col in ("documents", "removed", "%"):
        t.add_column(col, justify="right")
    names = [r["name"] for r in rep["rules"]]
    for i in range(len(names)):
        t.add_column(f"r{i + 1}", justify="right")
    for g in groups[:GROUPS_SHOWN]:
        t.add_row("(null)" if g["value"] is None else esc(str(g["value"])), f"{g['documents']:,}",
                  f"{g['removed_documents']:,}", f"{g['removed_documents_pct']:.2f}",
                  *[f"{g['rules'][n]:,}" for n in names])
    if len(groups) > GROUPS_SHOWN:
        rest = groups[GROUPS_SHOWN:]
        d, rm = sum(g["documents"] for g in rest), sum(g["removed_documents"] for g in rest)
        t.add_row(f"({len(rest):,} more values)", f"{d:,}", f"{rm:,}", f"{_pct(rm, d):.2f}",
                  *[f"{sum(g['rules'][n] for g in rest):,}" for n in names], style="dim")
    c.print(t)


def _render_examples(c, rep) -> None:
    for r in rep["rules"]:
        ex = rep["explain"][r["name"]]
        c.print(f"[bold]{esc(r['name'])}[/bold]" + ("" if r["name"] == " ".join(r["expr"].split())
                                                    else f": {esc(r['expr'])}")
                + f"  ({r['documents']:,} removed; {len(ex)} shown)", highlight=False)
        for e in ex:
            vals = "  ".join(f"{k}={_fmt(v)}" for k, v in e["values"].items())
            res = "null" if e["result"] is None else str(e["result"]).lower()
            c.print(f"  [cyan]{esc(str(e['id']))}[/cyan]  -> {res}  {esc(vals)}", highlight=False, soft_wrap=True)
            if e["text"] is not None:
                c.print(f"    [dim]{esc(_fmt(e['text']))}[/dim]", highlight=False, soft_wrap=True)


def esc(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def _fmt(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return repr(v.replace("\n", "⏎ "))
    return str(v)
