"""The HTML report: one self-contained file (inline CSS and SVG, no scripts, nothing fetched)."""

from __future__ import annotations

from html import escape

from curate import __version__
from curate.audit import svg
from curate.audit.fmt import headline, num, pct

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666}.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0}
.note{background:#e8f0fb;border-left:4px solid #3b6ea8;padding:6px 10px;margin:6px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px #0002;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:14px}.panel{background:#fff;border-radius:6px;padding:10px;box-shadow:0 1px 2px #0002}
.panel h3{font-size:14px;margin:0 0 6px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}td.t{text-align:left;font-family:ui-monospace,monospace;max-width:760px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
svg.chart{font:11px system-ui,sans-serif;fill:#333}svg .axis{fill:#555}svg .removed{fill:#b23b3b}
"""


def _cards(r: dict) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{escape(v)}</b>{escape(k)}<br><span>{escape(n)}</span></div>' for k, v, n in headline(r)) + "</div>"


def _notes(r: dict) -> str:
    out = []
    if r.get("sample"):
        s = r["sample"]
        out.append(f'<div class="note">A seeded uniform sample of {s["docs"]:,} of {s["of"]:,} documents ({pct(s["fraction"])}, '
                   f'seed {s["seed"]}): characters, words, 5-grams, repeated lines and MinHash are over the sample, totals are '
                   'estimates with 95% intervals; rows, bytes, exact duplicates and columns cover every row.</div>')
    out += [f'<div class="warn">{escape(p)}</div>' for p in r["problems"]]
    return "".join(out)


def _panel(title: str, body: str) -> str:
    return f'<div class="panel"><h3>{escape(title)}</h3>{body}</div>'


def _lengths(rs: list[dict]) -> str:
    rs = [r for r in rs if r.get("text")]
    if not rs:
        return [], ""
    panels = [_panel("document length (characters, log bins)",
                     svg.histogram([(_short(rs, r), r["text"]["length_histogram"]["characters"]) for r in rs],
                                   "document length in characters", "characters", log_x=True))]
    unit = rs[0]["text"]["units"]
    if unit == "words":
        panels.append(_panel("document length (words, log bins)",
                             svg.histogram([(_short(rs, r), r["text"]["length_histogram"]["words"] or []) for r in rs],
                                           "document length in words", "words", log_x=True)))
    q = "<table><tr><th></th>" + "".join(f"<th>{p}</th>" for p in ("p1", "p25", "p50", "p75", "p99", "max")) + "</tr>"
    for r in rs:
        for u, qs in r["text"]["length_quantiles"].items():
            label = u if len(rs) == 1 else f"{u} · {r['dataset']}"
            q += f"<tr><td>{escape(label)}</td>" + "".join(f"<td>{num(qs.get(k))}</td>" for k in ("0.01", "0.25", "0.5", "0.75", "0.99", "1.0")) + "</tr>"
    q += "</table>"
    err = rs[0]["text"]["quantile_rank_error"]
    qn = f'<p class="sub">quantiles from {num(rs[0]["text"]["quantile_rows"])} uniformly sampled rows' + (
        f", rank error ≤ {100 * err:.2f}% (95%)" if err else " (every row: exact)") + "</p>"
    return panels, "<h2>Lengths</h2>" + q + qn


def _dups(rs: list[dict]) -> str:
    rs = [r for r in rs if r.get("duplication")]
    if not rs:
        return [], ""
    series = []
    for r in rs:
        d = r["duplication"]
        tag = "" if len(rs) == 1 else f" · {'AB'[rs.index(r)]}"
        series.append(("exact" + tag, [c for c in d["exact"]["cluster_sizes"]]))
        if d.get("near"):
            series.append(("near (within the MinHash sample)" + tag, d["near"]["cluster_sizes"]))
    panel = _panel("duplicate cluster sizes (log-log)", svg.loglog(series, "duplicate cluster sizes"))
    out = ["<h2>Boilerplate: the most repeated lines and paragraphs</h2>"]
    for kind in ("lines", "paragraphs"):
        cells = []
        for r in rs:
            d = r["duplication"][kind]
            tag = "" if len(rs) == 1 else f" · {escape(r['dataset'])}"
            rows = "".join(f'<tr><td>{num(e["count"])}</td><td class="t">{escape(e["text"])}</td></tr>' for e in d["top"])
            cells.append(f'<div><table><tr><th>count</th><th>{kind}{tag}</th></tr>{rows or "<tr><td></td><td>none repeated</td></tr>"}</table>'
                         f'<p class="sub">{escape(d["method"])}; each count is at most {d["max_undercount"]:,} below the true one.</p></div>')
        out.append(f'<details{" open" if kind == "lines" else ""}><summary>{kind}</summary><div class="grid">{"".join(cells)}</div></details>')
    return [panel], "".join(out)


def _short(rs: list[dict], r: dict) -> str:
    return r["dataset"] if len(rs) == 1 else f"{'AB'[rs.index(r)]}: {r['dataset']}"


def _columns(rs: list[dict]) -> str:
    out = []
    names = []
    for r in rs:
        names += [e["name"] for e in r["columns"]["numeric"] if e["name"] not in names]
    if names:
        out.append("<h2>Numeric columns</h2>")
        t = "<table><tr><th>column</th>" + ("<th>dataset</th>" if len(rs) > 1 else "") + "".join(
            f"<th>{h}</th>" for h in ("values", "nulls", "min", "p1", "p50", "p99", "max", "mean")) + "</tr>"
        panels = []
        for n in names:
            got = [(r["dataset"], next((e for e in r["columns"]["numeric"] if e["name"] == n), None)) for r in rs]
            for ds, e in got:
                if e is None:
                    continue
                q = e["quantiles"]
                t += f"<tr><td>{escape(n)}</td>" + (f"<td>{escape(ds)}</td>" if len(rs) > 1 else "") + "".join(
                    f"<td>{num(v)}</td>" for v in (e["count"], e["nulls"] + e["nans"], e["min"], q.get("0.01"), q.get("0.5"), q.get("0.99"), e["max"], e["mean"])) + "</tr>"
            panels.append(_panel(n, svg.histogram([(ds, e["histogram"]) for ds, e in got if e], f"histogram of {n}", n, w=370, h=180)))
        out.append(t + "</table>")
        out.append('<div class="grid" style="margin-top:12px">' + "".join(panels) + "</div>")
    mixes = []
    for r in rs:
        for e in r["columns"]["strings"]:
            if e["mix"] and e["name"] not in mixes:
                mixes.append(e["name"])
    mix_panels = []
    if mixes:
        for n in mixes:
            per = []
            for r in rs:
                e = next((x for x in r["columns"]["strings"] if x["name"] == n and x["mix"]), None)
                per.append(dict(map(tuple, e["mix"])) if e else {})
            tots = [sum(m.values()) or 1 for m in per]
            keys = sorted({k for m in per for k in m}, key=lambda k: -per[0].get(k, 0) if per[0] else -per[-1].get(k, 0))
            top = keys[:12]
            rows = [(str(k), [m.get(k, 0) / t for m, t in zip(per, tots, strict=True)]) for k in top]
            if len(keys) > 12:
                rows.append((f"({len(keys) - 12} more)", [1 - sum(m.get(k, 0) for k in top) / t for m, t in zip(per, tots, strict=True)]))
            mix_panels.append(_panel(f"{n} mix", svg.hbars(rows, f"{n} mix", [_short(rs, r) for r in rs])))
    other = [c for r in rs for c in r["columns"]["other"]]
    if other:
        out.append(f'<p class="sub">not summarised: {escape(", ".join(sorted(set(other))))}</p>')
    return mix_panels, "".join(out)


def _funnel(r: dict) -> list[str]:
    lin = r["lineage"]
    if not lin["chain"]:
        return []
    return [_panel(f"rows through the pipeline · {r['dataset']}", svg.funnel(lin["funnel"], "per-stage funnel"))]


def _lineage(r: dict) -> str:
    lin = r["lineage"]
    out = [f"<h2>Lineage of {escape(r['dataset'])}</h2>"]
    if not lin["chain"]:
        return "".join(out) + "".join(f'<div class="warn">{escape(p)}</div>' for p in lin["problems"])
    out.append("<table><tr><th>stage</th><th>rows in</th><th>rows out</th><th>removed</th><th>by rule / reason</th><th>seed</th><th>output</th><th>finished</th></tr>")
    for c in lin["chain"]:
        out.append(f"<tr><td>{escape(c['stage'])}</td><td>{num(c['rows_in'])}</td><td>{num(c['rows_out'])}</td><td>{num(c['rows_rejected'])}</td>"
                   f"<td class=\"t\">{escape(', '.join(f'{k}={v:,}' for k, v in c['removed_by'].items()))}</td>"
                   f"<td>{'' if c['seed'] is None else escape(str(c['seed']))}</td>"
                   f"<td class=\"t\">{escape(c['output'] or '')} ({escape(c['on_disk'])})</td><td>{escape(c['finished'] or '')}</td></tr>")
    out.append(f'</table><p class="sub">chain: <b>{escape(lin["status"])}</b></p>')
    return "".join(out)


def render(a: dict, b: dict | None = None) -> str:
    rs = [a] if b is None else [a, b]
    title = f"audit of {a['dataset']}" if b is None else f"audit: {a['dataset']} vs {b['dataset']}"
    head = f"<h1>{escape(title)}</h1><p class=\"sub\">curate {escape(__version__)}</p>"
    if b is None:
        top = _notes(a) + _cards(a)
    else:
        rows = {}
        for i, r in enumerate(rs):
            for k, v, _ in headline(r):
                rows.setdefault(k, ["–", "–"])[i] = v
        top = _notes(a) + _notes(b) + f"<table><tr><th></th><th>A: {escape(a['dataset'])}</th><th>B: {escape(b['dataset'])}</th></tr>" + "".join(
            f"<tr><td>{escape(k)}</td><td>{escape(x)}</td><td>{escape(y)}</td></tr>" for k, (x, y) in rows.items()) + "</table>"
    len_panels, len_html = _lengths(rs)
    dup_panels, dup_html = _dups(rs)
    mix_panels, col_html = _columns(rs)
    chains = [r for r in rs if r["lineage"]["chain"] or b is None]
    longest = max(chains, key=lambda r: len(r["lineage"]["chain"])) if chains else None
    glance = len_panels + dup_panels + mix_panels[:1] + (_funnel(longest) if longest else []) + mix_panels[1:]
    body = (head + top + "<h2>At a glance</h2>" + '<div class="grid">' + "".join(glance) + "</div>" + len_html + col_html
            + dup_html + "".join(_lineage(r) for r in chains))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
