"""Inline SVG charts: no scripts, no fonts or files fetched, so a report is one file that opens
anywhere. Each function returns one <svg> element as a string."""

from __future__ import annotations

import math
from html import escape

from curate.audit.fmt import num

COLORS = ("#3b6ea8", "#d9822b", "#4a9a5b", "#a04c7d")
W, H = 540, 220
L, R, T, B = 56, 12, 14, 34


def _frame(body: str, title: str, w: int = W, h: int = H) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
            f'role="img"><title>{escape(title)}</title>{body}</svg>')


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _axes(x0: float, x1: float, ymax: float, xt: list[tuple[float, str]], ylabel: str, xlabel: str, w: int, h: int) -> str:
    pw, ph = w - L - R, h - T - B
    out = [f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="#888"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="#888"/>']
    for v in _ticks(0, ymax, 4):
        y = T + ph - (v / ymax * ph if ymax else 0)
        out.append(f'<line x1="{L - 3}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{L - 5}" y="{y + 4:.1f}" text-anchor="end">{num(v)}</text>')
    for pos, label in xt:
        x = L + (pos - x0) / ((x1 - x0) or 1) * pw
        out.append(f'<line x1="{x:.1f}" y1="{T + ph}" x2="{x:.1f}" y2="{T + ph + 4}" stroke="#888"/>'
                   f'<text x="{x:.1f}" y="{T + ph + 16}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{h - 3}" text-anchor="middle" class="axis">{escape(xlabel)}</text>')
    out.append(f'<text x="12" y="{T + ph / 2}" text-anchor="middle" class="axis" transform="rotate(-90 12 {T + ph / 2})">{escape(ylabel)}</text>')
    return "".join(out)


def histogram(series: list[tuple[str, list]], title: str, xlabel: str, log_x: bool = False, w: int = W, h: int = H) -> str:
    """series: (name, [[lo, hi, count], ...]); several series are drawn as outlines over the first."""
    series = [(n, b) for n, b in series if b]
    if not series:
        return _frame(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no values</text>', title, w, h)
    f = (lambda v: math.log10(max(v, 1))) if log_x else (lambda v: v)
    x0 = min(f(b[0][0]) for _, b in series)
    x1 = max(f(b[-1][1]) for _, b in series)
    if x1 <= x0:
        x1 = x0 + 1
    # densities when several series differ in size, counts otherwise
    norm = len(series) > 1
    ymax = max((c / (sum(x[2] for x in b) or 1) if norm else c) for _, b in series for _, _, c in b) or 1
    pw, ph = w - L - R, h - T - B
    body = []
    for k, (_, bins) in enumerate(series):
        tot = sum(x[2] for x in bins) or 1
        color = COLORS[k % len(COLORS)]
        for lo, hi, c in bins:
            v = c / tot if norm else c
            xa = L + (f(lo) - x0) / (x1 - x0) * pw
            xb = L + (f(hi) - x0) / (x1 - x0) * pw
            y = T + ph - v / ymax * ph
            style = f'fill="{color}" fill-opacity="0.75"' if k == 0 else f'fill="none" stroke="{color}" stroke-width="1.5"'
            body.append(f'<rect x="{xa:.1f}" y="{y:.1f}" width="{max(xb - xa - (0.5 if k == 0 else 0), 0.5):.1f}" '
                        f'height="{T + ph - y:.1f}" {style}><title>{num(lo)}–{num(hi)}: {num(c)}</title></rect>')
    if log_x:
        xt = [(float(e), num(10 ** e)) for e in range(math.ceil(x0), math.floor(x1) + 1)]
    else:
        xt = [(v, num(v)) for v in _ticks(x0, x1)]
    legend = ""
    if norm:
        legend = "".join(f'<rect x="{w - R - 150}" y="{T + 4 + 14 * k}" width="10" height="10" fill="{COLORS[k]}"/>'
                         f'<text x="{w - R - 136}" y="{T + 13 + 14 * k}">{escape(n[:24])}</text>' for k, (n, _) in enumerate(series))
    return _frame(_axes(x0, x1, ymax, xt, "share" if norm else "documents", xlabel, w, h) + "".join(body) + legend, title, w, h)


def loglog(series: list[tuple[str, list]], title: str, w: int = W, h: int = H) -> str:
    """series: (name, [[size, clusters], ...]) drawn as points on log-log axes."""
    pts = [(s, c) for _, d in series for s, c in d if s > 0 and c > 0]
    if not pts:
        return _frame(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no clusters</text>', title, w, h)
    xmax = math.log10(max(s for s, _ in pts)) + 0.2
    ymax = math.log10(max(c for _, c in pts)) + 0.2
    pw, ph = w - L - R, h - T - B
    body = [f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="#888"/>',
            f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="#888"/>']
    for e in range(0, math.floor(xmax) + 1):
        for m in (1, 2, 5) if xmax < 2.5 else (1,):
            v = m * 10 ** e
            if math.log10(v) <= xmax:
                x = L + math.log10(v) / xmax * pw
                body.append(f'<line x1="{x:.1f}" y1="{T + ph}" x2="{x:.1f}" y2="{T + ph + 4}" stroke="#888"/>'
                            f'<text x="{x:.1f}" y="{T + ph + 16}" text-anchor="middle">{num(v)}</text>')
    for e in range(0, math.floor(ymax) + 1):
        y = T + ph - e / ymax * ph
        body.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#eee"/><text x="{L - 5}" y="{y + 4:.1f}" text-anchor="end">{num(10 ** e)}</text>')
    for k, (name, d) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        for s, c in d:
            if s > 0 and c > 0:
                x = L + math.log10(s) / xmax * pw
                y = T + ph - math.log10(c) / ymax * ph
                body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}" fill-opacity="0.8"><title>{escape(name)}: {num(c)} clusters of {num(s)}</title></circle>')
        body.append(f'<circle cx="{w - R - 150}" cy="{T + 8 + 14 * k}" r="4" fill="{color}"/><text x="{w - R - 140}" y="{T + 12 + 14 * k}">{escape(name)}</text>')
    body.append(f'<text x="{L + pw / 2}" y="{h - 3}" text-anchor="middle" class="axis">cluster size (documents)</text>')
    body.append(f'<text x="12" y="{T + ph / 2}" text-anchor="middle" class="axis" transform="rotate(-90 12 {T + ph / 2})">clusters</text>')
    return _frame("".join(body), title, w, h)


def hbars(rows: list[tuple[str, list[float]]], title: str, names: list[str] | None = None, w: int = W, fmt=None) -> str:
    """rows: (label, [value per series]); values in [0, 1] are shares."""
    fmt = fmt or (lambda v: f"{100 * v:.1f}%")
    k = max((len(v) for _, v in rows), default=1)
    bh, gap, lw = 12, 6, 170
    h = T + len(rows) * (k * bh + gap) + (14 * k if names and k > 1 else 0) + 6
    vmax = max((x for _, v in rows for x in v), default=1) or 1
    pw = w - lw - R - 60
    body, y = [], T
    for label, vals in rows:
        body.append(f'<text x="{lw - 6}" y="{y + k * bh / 2 + 4:.1f}" text-anchor="end">{escape(label[:28])}</text>')
        for j, v in enumerate(vals):
            bw = v / vmax * pw
            body.append(f'<rect x="{lw}" y="{y + j * bh}" width="{max(bw, 0.5):.1f}" height="{bh - 2}" fill="{COLORS[j % len(COLORS)]}">'
                        f'<title>{escape(label)}: {fmt(v)}</title></rect><text x="{lw + bw + 4:.1f}" y="{y + j * bh + 10}">{fmt(v)}</text>')
        y += k * bh + gap
    if names and k > 1:
        for j, n in enumerate(names):
            body.append(f'<rect x="{lw}" y="{y + 14 * j}" width="10" height="10" fill="{COLORS[j]}"/><text x="{lw + 14}" y="{y + 9 + 14 * j}">{escape(n)}</text>')
    return _frame("".join(body), title, w, h)


def funnel(steps: list[dict], title: str, w: int = W) -> str:
    """Rows after each stage as bars, what each removed (one line per rule) beside them."""
    steps = [s for s in steps if s.get("rows") is not None]
    if not steps:
        return _frame('<text x="20" y="30">no lineage</text>', title, w, 60)
    top = max(s["rows"] for s in steps) or 1
    lw, bw_max = 96, (w - 96 - R) * 0.55
    body, y = [], T
    for s in steps:
        removed = [f"− {v:,} {k}" for k, v in (s.get("removed_by") or {}).items()]
        bh = max(24, 13 * len(removed) + 4)
        bw = s["rows"] / top * bw_max
        x = lw + (bw_max - bw) / 2
        body.append(f'<text x="{lw - 6}" y="{y + bh / 2 + 4}" text-anchor="end">{escape(s["stage"][:14])}</text>'
                    f'<rect x="{x:.1f}" y="{y}" width="{max(bw, 1):.1f}" height="{bh}" fill="{COLORS[0]}" rx="3">'
                    f'<title>{escape(s["stage"])}: {s["rows"]:,} rows</title></rect>'
                    f'<text x="{lw + bw_max / 2:.1f}" y="{y + bh / 2 + 4}" text-anchor="middle" fill="#fff">{s["rows"]:,}</text>')
        for k, line in enumerate(removed):
            body.append(f'<text x="{lw + bw_max + 8:.1f}" y="{y + 12 + 13 * k}" class="removed">{escape(line[:40])}</text>')
        y += bh + 8
    return _frame("".join(body), title, w, y + 4)
