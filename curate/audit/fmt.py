"""Number formatting shared by the terminal and HTML views."""

from __future__ import annotations

SPARK = "▁▂▃▄▅▆▇█"


def num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):  # "inf" / "-inf": the report's strict-JSON infinities
        return v
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}"
    if abs(v) >= 1e5:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def pct(v, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def ci(v: dict | None, key: str = "ci95", as_pct: bool = True) -> str:
    if not v or key not in v:
        return ""
    lo, hi = v[key]
    if as_pct:
        return f"[{100 * lo:.2f}, {100 * hi:.2f}]%"
    return f"[{num(lo)}, {num(hi)}]"


def spark(counts: list, width: int = 32) -> str:
    if not counts:
        return ""
    if len(counts) > width:  # merge neighbouring bins to fit
        k = -(-len(counts) // width)
        counts = [sum(counts[i:i + k]) for i in range(0, len(counts), k)]
    m = max(counts) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(c / m * (len(SPARK) - 1) + (0.999 if c else 0)))] if c else " " for c in counts)


def bar(frac: float, width: int = 24) -> str:
    full = frac * width
    n = int(full)
    part = " ▏▎▍▌▋▊▉"[int((full - n) * 8)]
    return "█" * n + (part if n < width else "")


def human_bytes(n) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def estimate(v: dict | None) -> tuple[str, str]:
    """(value, note) of an exact or estimated total."""
    v = v or {}
    if v.get("exact", True):
        return num(v.get("value")), ""
    return num(v.get("value")), f"est. from the sample, 95% CI [{num(v['ci95'][0])}, {num(v['ci95'][1])}]"


def text_units(r: dict) -> tuple[str, object, str]:
    """('tokens'|'words', value, note) of a report's text section."""
    t = r.get("text") or {}
    if t.get("units") == "tokens":
        return "tokens", t.get("tokens"), "n_tokens column"
    w = t.get("words") or {}
    return "words", w.get("value"), estimate(w)[1]


def headline(r: dict) -> list[tuple[str, str, str]]:
    """(label, value, note) rows common to both views."""
    s, t, d = r["size"], r.get("text") or {}, r.get("duplication") or {}
    rows = [("documents", num(s["documents"]), ""), ("shards", num(s["shards"]), ""),
            ("bytes on disk", human_bytes(s["bytes_on_disk"]), "")]
    if t:
        unit, val, note = text_units(r)
        rows += [("text bytes", human_bytes(t["bytes"]), ""), ("characters", *estimate(t["characters"])),
                 (unit, num(val), note), ("empty documents", num(t["empty_documents"]), "")]
    if d:
        e, n, g = d["exact"], d.get("near"), d["ngrams"]
        rows.append(("exact duplicates", pct(e["rate"]), ("exact" if e["exact"] else f"hash sample 1/{round(1 / e['hash_fraction'])}, 95% CI " + ci(e))))
        if n:
            # a within-sample figure reads as what it is, a lower bound, in the compare table too
            rows.append(("near duplicates", ("≥ " if n.get("lower_bound") else "") + pct(n["rate"]), near_note(n, r["size"]["documents"])))
        rows.append((f"distinct word {g['n']}-grams", num(round(g["distinct_est"])),
                     f"HyperLogLog, ±{100 * 1.96 * g['rel_error_1sd']:.1f}% (95%)" + (" in the sample" if g["over"] == "sample" else "")))
    return rows


def near_note(n: dict, docs: int) -> str:
    """What the near-duplicate rate covers: the corpus (sampled documents against every document),
    or the sample alone, then a lower bound unless the sample is the whole dataset."""
    how = f"MinHash Jaccard >= {n['threshold']}"
    if n.get("scope") == "corpus":
        return (f"95% CI {ci(n)}; {num(n['sample_docs'])} sampled docs each checked against all "
                f"{num(docs)}; {how}")
    if n.get("lower_bound"):
        return (f"WITHIN a sample of {num(n['sample_docs'])} docs only: a lower bound for the corpus "
                f"(near copies outside the sample not seen); 95% CI {ci(n)}; {how}")
    return f"95% CI {ci(n)}; {pct(n['removable'])} removable; over all {num(n['sample_docs'])} docs; {how}"
