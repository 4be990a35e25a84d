"""The modality-metrics table of an attributions folder: rows with bootstrap intervals, the paper's table
as text, a Markdown report. What ``vqa-shap metrics`` prints and writes (the study runner,
:mod:`vqa_shap.study`, writes the same)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence


def compute(folder: Path, configs: Sequence[str] | None = None, *, paper_compat: bool = False,
            bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Metric rows and per-question metrics of an attributions folder.

    Returns:
        ``(rows, per_question)``: JSON-ready rows (one per config × model × benchmark × variant ×
        signal, see :func:`vqa_shap.analysis.metrics.subset_rows`) and ``{config: [QuestionMetrics]}``.
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.metrics import question_metrics, subset_metrics, subset_rows
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.schema.records import Attribution

    chosen = hub.select_configs(folder, configs)
    rows: list[dict[str, Any]] = []
    per_question: dict[str, list] = {}
    for config in chosen:
        attrs = load_attributions(folder, config)
        groups: dict[tuple[str, str, str], list[Attribution]] = {}
        for a in attrs:
            groups.setdefault((a.model, a.benchmark, a.variant), []).append(a)
        per_question[config] = [question_metrics(a, paper_compat=paper_compat) for a in attrs
                                if a.error is None and a.answer is not None]  # counted by subset_metrics
        for (model, benchmark, variant), group in groups.items():
            subsets = subset_metrics(group, paper_compat=paper_compat, bootstrap=bootstrap,
                                     confidence=confidence, seed=seed)
            rows += subset_rows(subsets, config=config, model=model, benchmark=benchmark, variant=variant,
                                paper_compat=paper_compat)
    return rows, per_question


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (an infinite standard error, a NaN mean) as ``None``:
    strict JSON has no ``Infinity``/``NaN``, so they are written as ``null``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return json_ready(value.item())
    return value


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


PAPER_COLUMNS = ("mc_v", "mc_q", "mc_a", "pf_v", "pf_q", "pf_a")
#: The paper table's metric columns (Ground Truth signal) with accuracy, and their headers.
METRIC_COLUMNS = (*PAPER_COLUMNS, "accuracy")
METRIC_HEADERS = ("MC V", "MC Q", "MC A", "PF V", "PF Q", "PF A", "Acc")


def metric_cells(row: dict[str, Any]) -> str:
    """``row``'s :data:`METRIC_COLUMNS` as Markdown cells, ``"0.12 | … | 0.75"`` (two decimals, – when unknown)."""
    return " | ".join(_fmt(row[k]) for k in METRIC_COLUMNS)


def paper_table(rows: Sequence[dict[str, Any]]) -> str:
    """The paper's table (Ground Truth rows) as aligned text."""
    header = ["config", "model", "benchmark", "variant", "n", "err", *METRIC_HEADERS]
    body = [[r["config"], r["model"], r["benchmark"], r["variant"], str(r["n_questions"]), str(r["n_errors"]),
             *(_fmt(r[k]) for k in METRIC_COLUMNS)]
            for r in rows if r["signal"] == "Ground Truth"]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(x.ljust(w) if i < 4 else x.rjust(w) for i, (x, w) in enumerate(zip(line, widths)))
             for line in [header, *body]]
    return "\n".join(lines)


def markdown_report(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown report: the paper table, then every signal's metrics with intervals."""
    from vqa_shap.analysis.metrics import GROUP_NAMES, GROUPS, MODALITY_KEYS

    out = ["# Modality metrics", "",
           "Ground-truth signal, means over questions (the paper's table). Acc: accuracy of the "
           "stored predictions (– when unknown).", "",
           f"| config | model | benchmark | variant | n | {' | '.join(METRIC_HEADERS)} |",
           "|---|---|---|---|---:|" + "---:|" * len(METRIC_HEADERS)]
    for r in rows:
        if r["signal"] == "Ground Truth":
            out.append(f"| {r['config']} | {r['model']} | {r['benchmark']} | {r['variant']} | {r['n_questions']} | "
                       f"{metric_cells(r)} |")
    level = rows[0].get("confidence", 0.95) if rows else 0.95
    out += ["", f"## All signals ({level:.0%} bootstrap intervals over questions)", ""]
    for r in rows:
        out += [f"### {r['config']} — {r['signal']} (n = {r['n_questions']}, errors = {r['n_errors']})", "",
                "| metric | V | Q | A |", "|---|---|---|---|"]
        for g in (*GROUPS, "md", "pfd"):
            cells = []
            for m in MODALITY_KEYS:
                key = f"{g}_{m}"
                lo, hi = r["ci"].get(key, [None, None])
                cell = _fmt(r[key], 3)
                if lo is not None:
                    cell += f" [{_fmt(lo, 3)}, {_fmt(hi, 3)}]"
                if r.get("se") and key in r["se"]:
                    cell += f" ± {_fmt(r['se'][key], 3)}"
                cells.append(cell)
            out.append(f"| {GROUP_NAMES[g]} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
