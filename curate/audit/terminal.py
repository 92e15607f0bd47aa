"""The terminal view: rich tables, sparklines for distributions, bars for mixes and the funnel."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from curate import log
from curate.audit.fmt import bar, headline, num, pct, spark


def console() -> Console:
    return log.stdout_console(120)  # `| head` ends the report cleanly


def _title(c: Console, text: str) -> None:
    c.print(f"\n[bold underline]{text}[/]")


def show(r: dict, c: Console | None = None) -> None:
    c = c or console()
    c.print(f"[bold]audit of {r['dataset']}[/]")
    if r.get("sample"):
        s = r["sample"]
        c.print(f"[yellow]sample: {s['docs']:,} of {s['of']:,} documents ({pct(s['fraction'])}), uniform, seed {s['seed']}: "
                "characters, words, 5-grams, lines and MinHash are over the sample (totals estimated, 95% CIs); "
                "rows, bytes, exact duplicates and columns are over every row[/]")
    for p in r["problems"]:
        c.print(f"[yellow]! {p}[/]", highlight=False)
    _title(c, "size and duplication")
    t = Table(show_header=False, box=None, pad_edge=False)
    for label, val, note in headline(r):
        t.add_row(label, f"[bold]{val}[/]", f"[dim]{note}[/]")
    c.print(t)
    _lengths(c, r)
    _dups(c, r)
    _columns(c, r)
    _lineage(c, r)


def _lengths(c: Console, r: dict) -> None:
    t = r.get("text")
    if not t:
        return
    _title(c, "length distribution")
    tab = Table()
    tab.add_column("")
    for q in ("0.01", "0.25", "0.5", "0.75", "0.99", "1.0"):
        tab.add_column(f"p{round(float(q) * 100)}" if q != "1.0" else "max", justify="right")
    tab.add_column("histogram (log bins)", no_wrap=True)
    for unit, qs in t["length_quantiles"].items():
        hist = (t["length_histogram"].get(unit) or []) if unit in t["length_histogram"] else []
        tab.add_row(unit, *[num(qs.get(q)) for q in ("0.01", "0.25", "0.5", "0.75", "0.99", "1.0")], spark([b[2] for b in hist]))
    c.print(tab)


def _dups(c: Console, r: dict) -> None:
    d = r.get("duplication")
    if not d:
        return
    for kind in ("lines", "paragraphs"):
        top = d[kind]["top"][:10]
        if not top:
            continue
        _title(c, f"most repeated {kind}" + (" (in the sample)" if r.get("sample") else ""))
        tab = Table()
        tab.add_column("count", justify="right")
        tab.add_column("text", overflow="ellipsis", no_wrap=True, max_width=100)
        for e in top:
            tab.add_row(num(e["count"]), e["text"])
        c.print(tab)
        c.print(f"[dim]{d[kind]['method']}; each count is at most {d[kind]['max_undercount']:,} below the true one[/]")


def _columns(c: Console, r: dict) -> None:
    cols = r["columns"]
    if cols["numeric"]:
        _title(c, "numeric columns")
        tab = Table()
        for h in ("column", "values", "nulls", "min", "p1", "p50", "p99", "max", "mean", "histogram"):
            tab.add_column(h, justify="left" if h in ("column", "histogram") else "right", no_wrap=h == "histogram")
        for e in cols["numeric"]:
            q = e["quantiles"]
            tab.add_row(e["name"], num(e["count"]), num(e["nulls"] + e["nans"]), num(e["min"]), num(q.get("0.01")),
                        num(q.get("0.5")), num(q.get("0.99")), num(e["max"]), num(e["mean"]), spark([b[2] for b in e["histogram"]]))
        c.print(tab)
    for e in cols["strings"]:
        if not e["mix"]:
            c.print(f"[dim]{e['name']}: {e['distinct']} distinct values (not a mix)[/]")
            continue
        _title(c, f"{e['name']} mix ({e['distinct']} values)")
        total = sum(v for _, v in e["mix"]) or 1
        tab = Table(box=None)
        tab.add_column("value")
        tab.add_column("rows", justify="right")
        tab.add_column("share", justify="right")
        tab.add_column("")
        shown = e["mix"][:12]
        for k, v in shown:
            tab.add_row(str(k), num(v), pct(v / total, 1), f"[cyan]{bar(v / total)}[/]")
        rest = total - sum(v for _, v in shown)
        if rest:
            tab.add_row(f"({len(e['mix']) - len(shown)} more)", num(rest), pct(rest / total, 1), bar(rest / total))
        c.print(tab)
    if cols["other"]:
        c.print(f"[dim]not summarised: {', '.join(cols['other'])}[/]")


def _lineage(c: Console, r: dict) -> None:
    lin = r["lineage"]
    _title(c, "lineage (oldest first)")
    if not lin["chain"]:
        c.print(f"[yellow]{'; '.join(lin['problems'])}[/]")
        return
    top = max((f["rows"] or 0) for f in lin["funnel"]) or 1
    tab = Table()
    for h in ("stage", "rows", "", "removed", "by", "seed", "output"):
        tab.add_column(h, justify="right" if h in ("rows", "removed") else "left")
    for f, ch in zip(lin["funnel"], [None] + lin["chain"], strict=True):
        removed = sum((f["removed_by"] or {}).values())
        tab.add_row(f["stage"], num(f["rows"]), f"[green]{bar((f['rows'] or 0) / top, 20)}[/]",
                    num(removed) if ch else "", " ".join(f"{k}={v:,}" for k, v in f["removed_by"].items()),
                    "" if not ch or ch["seed"] is None else str(ch["seed"]),
                    "" if not ch else f"{ch['output'] or ''} [dim]({ch['on_disk']})[/]")
    c.print(tab)
    c.print(f"chain: [bold]{lin['status']}[/]")


def show_compare(a: dict, b: dict, c: Console | None = None) -> None:
    c = c or console()
    c.print(f"[bold]audit: A = {a['dataset']}  vs  B = {b['dataset']}[/]")
    for r in (a, b):
        for p in r["problems"]:
            c.print(f"[yellow]! {r['dataset']}: {p}[/]", highlight=False)
    tab = Table(title="side by side", title_justify="left")
    tab.add_column("")
    tab.add_column(f"A: {a['dataset']}", justify="right")
    tab.add_column(f"B: {b['dataset']}", justify="right")
    ha, hb = {k: v for k, v, _ in headline(a)}, {k: v for k, v, _ in headline(b)}
    for k in list(ha) + [k for k in hb if k not in ha]:
        tab.add_row(k, ha.get(k, "–"), hb.get(k, "–"))
    va, vb = a["size"]["documents"], b["size"]["documents"]
    if vb:
        tab.add_row("documents, A / B", pct(va / vb, 1), "")
    c.print(tab)
    na = {e["name"]: e for e in a["columns"]["numeric"]}
    nb = {e["name"]: e for e in b["columns"]["numeric"]}
    if na or nb:
        t2 = Table(title="numeric columns: median (p1 – p99)", title_justify="left")
        t2.add_column("column")
        t2.add_column(a["dataset"], justify="right")
        t2.add_column(b["dataset"], justify="right")
        for k in sorted(set(na) | set(nb)):
            cells = []
            for m in (na, nb):
                q = (m.get(k) or {}).get("quantiles") or {}
                cells.append(f"{num(q.get('0.5'))} ({num(q.get('0.01'))} – {num(q.get('0.99'))})" if q else "–")
            t2.add_row(k, *cells)
        c.print(t2)
    sa = {e["name"]: e for e in a["columns"]["strings"] if e["mix"]}
    sb = {e["name"]: e for e in b["columns"]["strings"] if e["mix"]}
    for k in sorted(set(sa) & set(sb)):
        ma, mb = dict(map(tuple, sa[k]["mix"])), dict(map(tuple, sb[k]["mix"]))
        ta, tb = sum(ma.values()) or 1, sum(mb.values()) or 1
        t3 = Table(title=f"{k} mix", title_justify="left")
        for h in ("value", "share A", "share B", "A − B", "rows A / B"):
            t3.add_column(h, justify="left" if h == "value" else "right")
        for v in sorted(set(ma) | set(mb), key=lambda v: -ma.get(v, 0))[:15]:
            x, y = ma.get(v, 0), mb.get(v, 0)
            t3.add_row(str(v), pct(x / ta, 1), pct(y / tb, 1), f"{100 * (x / ta - y / tb):+.1f} pt", pct(x / y, 0) if y else "–")
        c.print(t3)
    _lineage(c, a if len(a["lineage"]["chain"]) >= len(b["lineage"]["chain"]) else b)
