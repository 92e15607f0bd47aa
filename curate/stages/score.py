"""curate score: add score columns (numbers, never verdicts) to every row, several scorers in one
pass over the data. Thresholds belong to `curate filter`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from curate import log
from curate.errors import UsageError
from curate.run.executor import Phase, Task, TaskContext
from curate.stages.base import MapStage, put_column


@dataclass(frozen=True)
class ScoreParams:
    kenlm: str | None = None  # model for ppl
    commonness: str | None = None  # model for commonness
    tokenizer: str | None = None  # None: each model's own (from its manifest)
    signals: tuple[str, ...] = ()  # heuristic signal sets (curate.score.signals.SETS)
    fasttext: tuple[tuple[str, str], ...] = ()  # (column prefix, model file) per fastText classifier
    dsir: object = None  # curate.score.dsir.DSIRParams, or None


class Score(MapStage):
    name = "score"

    def __init__(self, dataset, params: ScoreParams):
        super().__init__(dataset, params)
        from curate.score.kenlm_scorer import KenLMScorer

        self.scorers = []
        if params.kenlm:
            self.scorers.append(KenLMScorer("ppl", params.kenlm, params.tokenizer, "--kenlm"))
        if params.commonness:
            self.scorers.append(KenLMScorer("commonness", params.commonness, params.tokenizer, "--commonness"))
        if params.signals:
            from curate.score.signals import SignalsScorer

            self.scorers.append(SignalsScorer(params.signals))
        for name, model in params.fasttext:
            from curate.score.fasttext_scorer import FastTextScorer

            self.scorers.append(FastTextScorer(name, model))
        if params.dsir is not None:
            from curate.score.dsir import DSIRScorer

            self.scorers.append(DSIRScorer(params.dsir, dataset.stdin))
        if not self.scorers:
            raise UsageError("nothing to score", hint="give at least one scorer, e.g. --kenlm MODEL, --commonness MODEL or --signals gopher")
        self._warned: set[str] = set()

    def manifest_params(self) -> dict:
        return {"scorers": [{"kind": s.kind, **s.identity()} for s in self.scorers]}

    # -- a first phase for scorers fitted on the input (DSIR's raw distribution) ----------------
    def phases(self) -> list[Phase]:
        tasks = self.plan()
        fit = [t for i, s in enumerate(self.scorers) if hasattr(s, "fit_tasks") for t in s.fit_tasks(self, i)]
        return [Phase("fit", fit, "run_fit"), Phase("score", tasks)] if fit else [Phase("main", tasks)]

    def run_fit(self, task: Task, ctx: TaskContext) -> None:
        self.scorers[task.spec[0]].run_fit(self, task.spec, task, ctx)

    def begin_task(self, task: Task, ctx: TaskContext) -> None:
        for s in self.scorers:
            if hasattr(s, "begin"):
                s.begin(self, ctx)

    def finalize(self, out, results) -> dict:
        extra: dict = {}
        for s in self.scorers:
            if hasattr(s, "finalize"):
                extra |= s.finalize(self, out)
        return extra

    def prepare(self) -> None:
        for s in self.scorers:
            s.prepare()  # models load once per process, memory-mapped and shared through the page cache

    def transform(self, batch: pa.RecordBatch, result):
        text = batch.column("text")
        existing = set(batch.schema.names)
        written: set[str] = set()
        for s in self.scorers:
            for name, values in s.score(text).items():
                if name in written:  # n_tokens: the first scorer's count
                    continue
                if name in existing and name not in self._warned:
                    log.warn(f"score: replacing the input's {name!r} column")
                    self._warned.add(name)
                batch = put_column(batch, name, values)
                written.add(name)
        result.count("scored", batch.num_rows)
        return batch, None
