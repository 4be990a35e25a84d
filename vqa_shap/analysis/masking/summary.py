"""Summaries of masking-benchmark rows: accuracy per setting, the paper's JSON layout, text tables.

Every name here is importable from :mod:`vqa_shap.analysis.masking.experiment` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from vqa_shap.analysis.masking.masks import MODES, SIGNALS, MaskSetting

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.analysis.masking.experiment import MaskBenchRow

@dataclass(frozen=True)
class SettingAccuracy:
    """Accuracy of one setting over the questions that ran, and its difference to ``nothing``."""

    setting: str
    signal: str | None
    mode: str | None
    n_questions: int
    n_errors: int
    accuracy: float | None
    diff: float | None

    @property
    def key(self) -> str:
        return MaskSetting(self.setting, self.signal, self.mode).key


def summarize(rows: Sequence[MaskBenchRow]) -> list[SettingAccuracy]:
    """Accuracy per setting (settings in first-seen order) and the difference to ``nothing``.

    Questions with an error are excluded and counted in ``n_errors``.
    """
    by_key: dict[tuple, list[MaskBenchRow]] = {}
    for r in rows:
        by_key.setdefault((r.setting, r.signal, r.mode), []).append(r)
    accs: dict[tuple, float | None] = {}
    for k, rs in by_key.items():
        ok = [r.correct for r in rs if r.error is None]
        accs[k] = float(np.mean(ok)) if ok else None
    base = accs.get(("nothing", None, None))
    out = []
    for k, rs in by_key.items():
        n_err = sum(r.error is not None for r in rs)
        acc = accs[k]
        diff = None if acc is None or base is None else acc - base
        out.append(SettingAccuracy(*k, n_questions=len(rs) - n_err, n_errors=n_err, accuracy=acc, diff=diff))
    return out


def paper_json(rows: Sequence[MaskBenchRow]) -> dict[str, Any]:
    """The paper's masking-benchmark JSON layout (as its released code writes it) from tidy rows.

    ``{"nothing": {"preds", "accuracy"}, "everything": {mode: ...}, "positive": {signal: {mode: ...}},
    "negative": ...}``; preds follow the question order of ``rows`` (``null`` for failed questions,
    which the accuracy excludes).
    """
    out: dict[str, Any] = {}
    by_key: dict[tuple, list[MaskBenchRow]] = {}
    for r in rows:
        by_key.setdefault((r.setting, r.signal, r.mode), []).append(r)
    for (setting, signal, mode), rs in by_key.items():
        ok = [r.correct for r in rs if r.error is None]
        entry = {"preds": [r.prediction for r in rs], "accuracy": float(np.mean(ok)) if ok else None}
        if setting == "nothing":
            out["nothing"] = entry
        elif setting == "everything":
            out.setdefault("everything", {})[mode] = entry
        else:
            out.setdefault(setting, {}).setdefault(signal, {})[mode] = entry
    return out


def format_table(summary: Sequence[SettingAccuracy]) -> str:
    """A plain-text table: accuracy per setting and the difference to ``nothing`` (signed, in points)."""
    lines = [f"{'setting':<38} {'n':>4} {'err':>4} {'acc':>7} {'vs nothing':>11}"]
    for s in summary:
        acc = "-" if s.accuracy is None else f"{s.accuracy:.3f}"
        diff = "" if s.setting == "nothing" else ("-" if s.diff is None else f"{100 * s.diff:+.1f} pt")
        lines.append(f"{s.key:<38} {s.n_questions:>4} {s.n_errors:>4} {acc:>7} {diff:>11}")
    return "\n".join(lines)


def format_matrix(summary: Sequence[SettingAccuracy]) -> str:
    """The paper's benchmark table layout: accuracy difference to ``nothing`` (points), rows
    everything / positive × signal / negative × signal, columns the modes (``joint`` = all features)."""
    by = {(s.setting, s.signal, s.mode): s for s in summary}
    base = by.get(("nothing", None, None))
    head = "nothing: " + ("-" if base is None or base.accuracy is None else
                          f"accuracy {base.accuracy:.3f} over {base.n_questions} questions")
    lines = [head, f"{'Δ accuracy (pt)':<26}" + "".join(f"{m:>10}" for m in MODES)]
    row_keys = [("everything", None)] + [(k, sig) for k in ("positive", "negative") for sig in SIGNALS]
    for kind, sig in row_keys:
        cells = []
        for m in MODES:
            s = by.get((kind, sig, m))
            cells.append(f"{'':>10}" if s is None else f"{'-' if s.diff is None else f'{100 * s.diff:+.1f}':>10}")
        if any(c.strip() for c in cells):
            lines.append(f"{kind + ('/' + sig if sig else ''):<26}" + "".join(cells))
    return "\n".join(lines)


