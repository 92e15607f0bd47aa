"""The manifest chain of a dataset, back to ingest, with rows removed per stage and per rule, and
every break in it said plainly."""

from __future__ import annotations

import json

from curate.io.location import info, locate
from curate.io.manifest import MANIFEST, digest


def _removed_by(entry: dict) -> dict:
    counters = entry.get("counters") or {}
    rules = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("removed:")}
    if rules:
        return rules
    rejected = (entry.get("totals") or {}).get("rows_rejected") or 0
    # dedup and ingest name their single reason as a counter equal to the rows they rejected
    named = {k: v for k, v in counters.items() if v == rejected and rejected and k not in ("clusters", "scored")}
    return named or ({"rejected": rejected} if rejected else {})


def _on_disk(uri: str | None, want: str | None) -> str:
    """Whether the ancestor's output is still there and is the dataset the chain recorded."""
    if not uri:
        return "unknown"
    try:
        m = locate(uri).child(MANIFEST)
        if info(m).type.name != "File":
            return "gone"
        with m.fs.open_input_stream(m.path) as f:
            got = digest(json.loads(f.read()))
        return "same" if got == want else "rewritten since"
    except Exception:  # a remote store we cannot reach, a bad file: say so, go on
        return "unreadable"


def lineage(manifest: dict | None, problem: str | None = None) -> dict:
    if manifest is None:
        return {"status": "broken" if problem else "none", "chain": [], "funnel": [],
                "problems": [problem or "no _manifest.json: not written by curate, so its lineage is unknown"]}
    chain, problems = [], []
    entries = list(manifest.get("lineage") or []) + [{**manifest, "digest": digest(manifest)}]
    for a in entries:
        t = a.get("totals") or {}
        chain.append({
            "stage": a.get("stage") or "?", "output": a.get("output"), "finished": a.get("finished"),
            "rows_in": t.get("rows_in"), "rows_out": t.get("rows_out"), "rows_rejected": t.get("rows_rejected"),
            "removed_by": _removed_by(a), "seed": a.get("seed"), "params": a.get("params") or {},
            "digest": a.get("digest"), "on_disk": _on_disk(a.get("output"), a.get("digest")) if a is not entries[-1] else "this dataset",
        })
    for prev, cur in zip(chain, chain[1:], strict=False):
        if prev["rows_out"] is not None and cur["rows_in"] is not None and prev["rows_out"] != cur["rows_in"]:
            problems.append(f"broken chain: {cur['stage']} read {cur['rows_in']:,} rows but {prev['stage']} wrote "
                            f"{prev['rows_out']:,} (a dataset in between was changed or is missing from the lineage)")
    parent = (manifest.get("input") or {}).get("manifest_digest")
    if len(entries) > 1 and parent and parent != entries[-2].get("digest"):
        problems.append("broken chain: the input manifest this dataset records is not the last ancestor in its lineage")
    if len(entries) > 1 and not parent:
        problems.append("broken chain: the manifest records no input digest")
    if chain and chain[0]["stage"] != "ingest":
        problems.append(f"the chain does not reach ingest: its oldest stage is {chain[0]['stage']} "
                        "(older ancestors are summarised by digest only, or the data came from elsewhere)")
    for c in chain:
        if c["on_disk"] == "rewritten since":
            problems.append(f"{c['stage']} output {c['output']} was rewritten after this dataset was made from it")
    funnel = []
    if chain:
        funnel.append({"stage": "input", "rows": chain[0]["rows_in"], "removed_by": {}})
        for c in chain:
            funnel.append({"stage": c["stage"], "rows": c["rows_out"], "removed_by": c["removed_by"]})
    return {"status": "broken" if any(p.startswith("broken") for p in problems) else "ok", "chain": chain,
            "funnel": funnel, "problems": problems}
