"""curate score: add score columns (numbers, never verdicts) to every row, several scorers in one
pass over the data. Thresholds belong to `curate filter`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from curate import log
from curate.errors import UsageError
from curate.stages.base import MapStage, put_column


@dataclass(frozen=True)
class ScoreParams:
    kenlm: str | None = None  # model for ppl
    commonness: str | None = None  # model for commonness
    tokenizer: str | None = None  # None: each model's own (from its manifest)
    signals: tuple[str, ...] = ()  # heuristic signal sets (curate.score.signals.SETS)


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
        if not self.scorers:
            raise UsageError("nothing to score", hint="give at least one scorer, e.g. --kenlm MODEL, --commonness MODEL or --signals gopher")
        self._warned = False

    def manifest_params(self) -> dict:
        return {"scorers": [{"kind": s.kind, **s.identity()} for s in self.scorers]}

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
                if name in existing and not self._warned:
                    log.warn(f"score: replacing the input's {name!r} column")
                    self._warned = True
                batch = put_column(batch, name, values)
                written.add(name)
        result.count("scored", batch.num_rows)
        return batch, None
