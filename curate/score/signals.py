"""Heuristic quality signals: the quantities Gopher (quality and repetition), C4 and FineWeb threshold,
one column each, computed as datatrove 0.10.1's filters compute them (see the README, "Quality
signals"). The thresholds live in configs/gopher.toml, c4.toml and fineweb.toml.

The work is one C pass per batch (curate/_signals.c): datatrove's English word splitter (spaCy's
tokenizer rules) and C4's sentence counter are reimplemented there from generated tables.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.errors import UsageError

SETS = {"gopher": 1, "gopher-repetition": 2, "c4": 4, "fineweb": 8}
_I, _F = pa.int64(), pa.float64()
# (column, type, set) in the kernel's output order
COLUMNS = [
    ("gopher_n_words", _I, "gopher"),
    ("gopher_mean_word_length", _F, "gopher"),
    ("gopher_hash_ratio", _F, "gopher"),
    ("gopher_ellipsis_ratio", _F, "gopher"),
    ("gopher_bullet_lines_ratio", _F, "gopher"),
    ("gopher_ellipsis_lines_ratio", _F, "gopher"),
    ("gopher_alpha_words_ratio", _F, "gopher"),
    ("gopher_stop_words", _I, "gopher"),
    ("gopher_repetition_dup_para_frac", _F, "gopher-repetition"),
    ("gopher_repetition_dup_para_char_frac", _F, "gopher-repetition"),
    ("gopher_repetition_dup_line_frac", _F, "gopher-repetition"),
    ("gopher_repetition_dup_line_char_frac", _F, "gopher-repetition"),
    *[(f"gopher_repetition_top_{n}_gram_char_frac", _F, "gopher-repetition") for n in (2, 3, 4)],
    *[(f"gopher_repetition_dup_{n}_gram_char_frac", _F, "gopher-repetition") for n in range(5, 11)],
    ("c4_lorem_ipsum_lines", _I, "c4"),
    ("c4_curly_bracket_lines", _I, "c4"),
    ("c4_sentences", _I, "c4"),
    ("c4_kept_lines", _I, "c4"),
    ("fineweb_line_punct_ratio", _F, "fineweb"),
    ("fineweb_short_line_ratio", _F, "fineweb"),
    ("fineweb_char_dup_ratio", _F, "fineweb"),
    ("fineweb_list_ratio", _F, "fineweb"),
]


def parse_sets(spec: str) -> tuple[str, ...]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown or not names:
        raise UsageError(f"--signals {spec!r}: unknown signal set {', '.join(map(repr, unknown)) or '(none given)'}",
                         hint=f"choose among {', '.join(SETS)}, comma-separated, e.g. --signals gopher,c4")
    return tuple(s for s in SETS if s in names)  # canonical order: the same columns whatever the spelling


class SignalsScorer:
    kind = "signals"

    def __init__(self, sets: tuple[str, ...]):
        self.sets = tuple(sets)
        self.mask = sum(SETS[s] for s in self.sets)

    def fields(self) -> list[pa.Field]:
        return [pa.field(name, t) for name, t, s in COLUMNS if s in self.sets]

    def identity(self) -> dict:
        from curate import _signals

        return {"sets": list(self.sets), "definitions": "datatrove-0.10.1", "columns": _signals.NCOLS}

    def prepare(self) -> None:
        from curate import _signals  # noqa: F401  (loads the tables once per process)

    def score(self, text) -> dict[str, pa.Array]:
        from curate import _signals

        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if pa.types.is_string_view(text.type):
            text = text.cast(pa.large_string())
        n = len(text)
        out = np.empty((_signals.NCOLS, n), np.float64)
        if n:
            wide = pa.types.is_large_string(text.type)
            bufs = text.buffers()
            offsets = np.frombuffer(bufs[1], np.int64 if wide else np.int32)[text.offset:text.offset + n + 1]
            data = bufs[2] if bufs[2] is not None else b""
            _signals.signals(np.ascontiguousarray(offsets), data, wide, self.mask, out)
        invalid = text.is_null().to_numpy(zero_copy_only=False) if text.null_count else None
        cols = {}
        for i, (name, t, s) in enumerate(COLUMNS):
            if s not in self.sets:
                continue
            v = out[i]
            mask = np.isnan(v)
            if invalid is not None:
                mask |= invalid
            vals = np.where(mask, 0, v).astype(np.int64) if t == _I else v
            cols[name] = pa.array(vals, type=t, mask=mask if mask.any() else None)
        return cols
