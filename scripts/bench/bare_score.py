"""The limit of `curate score`: a bare Python loop calling kenlm.Model.score over pre-tokenised
lines held in a list. Prints {"loop_s": ..., "lines": ...}; only the loop is timed.

    python scripts/bench/bare_score.py MODEL TOKENISED.txt [--procs 2]

With --procs 2 the lines are split in two halves scored by two processes at once (fork), and
loop_s is the time until both are done.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import kenlm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("lines")
    ap.add_argument("--procs", type=int, default=1)
    a = ap.parse_args()
    model = kenlm.Model(a.model)
    with open(a.lines, encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    score = model.score
    if a.procs == 1:
        t0 = time.perf_counter()
        for s in lines:
            score(s)
        dt = time.perf_counter() - t0
    else:
        per = -(-len(lines) // a.procs)
        t0 = time.perf_counter()
        pids = []
        for i in range(a.procs):
            pid = os.fork()
            if pid == 0:
                for s in lines[i * per:(i + 1) * per]:
                    score(s)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
        dt = time.perf_counter() - t0
    print(json.dumps({"loop_s": dt, "lines": len(lines)}))


if __name__ == "__main__":
    main()
