"""``vqa-shap metrics``: the paper's modality metrics of an attributions dataset, with intervals.

Prints the paper's table (Ground Truth signal: MC V/Q/A, PF V/Q/A, Acc) per model × benchmark ×
variant; ``--json`` writes every signal's subset means with bootstrap intervals (and propagated
standard errors where the attributions carry them), ``--markdown`` a readable report,
``--per-question`` the paper's per-question table. Rows with ``error`` are excluded and counted.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributions", metavar="ATTRIBUTIONS", type=argtypes.folder,
                        help="Hub-style attributions dataset folder (vqa-shap explain / import-paper)")
    parser.add_argument("--config", action="append", type=argtypes.config_name, metavar="C",
                        help="config to evaluate (repeatable; default: every config in the folder)")
    parser.add_argument("--json", type=argtypes.out_file, metavar="OUT", help="write the metric rows as JSON")
    parser.add_argument("--markdown", type=argtypes.out_file, metavar="OUT", help="write a Markdown report")
    parser.add_argument("--per-question", type=argtypes.out_file, metavar="OUT",
                        help="write the per-question metrics (the paper's q_uid_metrics layout) as CSV")
    parser.add_argument("--paper-compat", action="store_true",
                        help="reproduce the paper's answer Ratio (count divided by all features, not answer features)")
    parser.add_argument("--bootstrap", type=argtypes.bootstrap, default=1000, metavar="N",
                        help="question resamples for the confidence intervals (0: none; default 1000)")
    parser.add_argument("--confidence", type=argtypes.confidence, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="bootstrap seed")


def compute(folder: Path, configs: Sequence[str] | None = None, *, paper_compat: bool = False,
            bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Metric rows and per-question metrics of an attributions folder.

    Returns:
        ``(rows, per_question)``: JSON-ready rows (one per config × model × benchmark × variant ×
        signal, see :func:`vqa_shap.analysis.metrics.subset_rows`) and ``{config: [QuestionMetrics]}``.
    """
    from vqa_shap import hub
    from vqa_shap.errors import VqaShapError
    from vqa_shap.analysis.metrics import question_metrics, subset_metrics, subset_rows
    from vqa_shap.analysis.maskbench import load_attributions
    from vqa_shap.schema import Attribution

    available = hub.list_configs(folder)
    if not available:
        raise VqaShapError(f"{folder}: no dataset configs found (expected a Hub-style attributions folder)")
    chosen = list(configs) if configs else available
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise VqaShapError(f"{folder}: unknown config(s) {unknown}; available: {available}")
    rows: list[dict[str, Any]] = []
    per_question: dict[str, list] = {}
    for config in chosen:
        attrs = load_attributions(folder, config)
        groups: dict[tuple[str, str, str], list[Attribution]] = {}
        for a in attrs:
            groups.setdefault((a.model, a.benchmark, a.variant), []).append(a)
        per_question[config] = [question_metrics(a, paper_compat=paper_compat) for a in attrs if a.error is None]
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


def paper_table(rows: Sequence[dict[str, Any]]) -> str:
    """The paper's table (Ground Truth rows) as aligned text."""
    header = ["config", "model", "benchmark", "variant", "n", "err",
              "MC V", "MC Q", "MC A", "PF V", "PF Q", "PF A", "Acc"]
    body = [[r["config"], r["model"], r["benchmark"], r["variant"], str(r["n_questions"]), str(r["n_errors"]),
             *(_fmt(r[k]) for k in PAPER_COLUMNS), _fmt(r["accuracy"])]
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
           "| config | model | benchmark | variant | n | MC V | MC Q | MC A | PF V | PF Q | PF A | Acc |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["signal"] == "Ground Truth":
            out.append(f"| {r['config']} | {r['model']} | {r['benchmark']} | {r['variant']} | {r['n_questions']} | "
                       + " | ".join(_fmt(r[k]) for k in PAPER_COLUMNS) + f" | {_fmt(r['accuracy'])} |")
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


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from vqa_shap.analysis.metrics import question_metrics_frame
    from vqa_shap.io import atomic_write_text

    rows, per_question = compute(args.attributions, args.config, paper_compat=args.paper_compat,
                                 bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    print(paper_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_ready(rows), indent=2, allow_nan=False) + "\n", mkdir=True)
        print(f"wrote {len(rows)} rows to {args.json}")
    if args.markdown:
        atomic_write_text(args.markdown, markdown_report(rows) + "\n", mkdir=True)
        print(f"wrote {args.markdown}")
    if args.per_question:
        frames = {config: question_metrics_frame(qms) for config, qms in per_question.items() if qms}
        table = pd.concat(frames, names=["config", "qid", "signal"]) if frames else pd.DataFrame()
        atomic_write_text(args.per_question, table.to_csv(), mkdir=True)
        print(f"wrote {args.per_question}")
    return 0
