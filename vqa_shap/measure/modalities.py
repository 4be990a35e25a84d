"""Modality contributions of a trained demo model next to the paper's real models
(used by ``scripts/bench_modalities.py``).

The demo model's questions are explained and measured through the public commands (``build``,
``explain``, ``metrics``); the paper's rows are its published Shapley tables for FrozenBiLM and
InternVideo imported with ``import-paper`` and measured by the same ``metrics``. Only the ground-truth
signal (the paper's table) is kept, with bootstrap intervals. The table in docs/demo.md is rendered from
the committed record (:func:`modalities_table`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from vqa_shap.analysis.metrics_table import METRIC_COLUMNS, METRIC_HEADERS, metric_cells
from vqa_shap.measure.doc_tables import markers, update_file

#: The markers around the generated table in docs/demo.md.
TABLE_START, TABLE_END = markers("modalities-table")
#: The paper's models and benchmarks whose published tables are imported.
PAPER_MODELS = ("frozenbilm", "internvideo")
PAPER_BENCHMARKS = ("egoschema", "hd-epic", "mvbench", "lvbench")
#: Seed of the demo model's questions (not a training or held-out seed).
QUESTION_SEED = 70_000_000


def _cli(*argv: str) -> None:
    from vqa_shap.cli import main

    code = main([str(a) for a in argv])
    if code:
        raise RuntimeError(f"vqa-shap {' '.join(map(str, argv))} exited with {code}")


def _ground_truth(metrics_json: Path) -> list[dict[str, Any]]:
    rows = json.loads(metrics_json.read_text())
    keep = ("config", "model", "benchmark", "variant", "n_questions", "n_errors", *METRIC_COLUMNS)
    return [{**{k: r[k] for k in keep}, "ci": {k: r["ci"][k] for k in METRIC_COLUMNS}}
            for r in rows if r["signal"] == "Ground Truth"]


def measure_model(model: str, workdir: Path, *, n_questions: int, budget: int, threads: int = 1) -> dict[str, Any]:
    """Explain ``n_questions`` realistic-layout synthetic questions with ``model``; its ground-truth row."""
    from vqa_shap.builders.shapes import generate_source
    from vqa_shap.demo.architecture import REALISTIC_FRAME_SIZE, REALISTIC_FRAMES, REALISTIC_TILES

    source = generate_source(workdir / "source", n_questions, seed=QUESTION_SEED, n_frames=REALISTIC_FRAMES,
                             size=REALISTIC_FRAME_SIZE, wording="long", tiles=REALISTIC_TILES)
    _cli("build", "synthetic", source, "--out", workdir / "questions")
    load = [os.getloadavg()[0]]
    started = time.perf_counter()
    _cli("explain", workdir / "questions", "--config", "synthetic", "--model", model, "--video-root", source,
         "--frames", REALISTIC_FRAMES, "--budget", budget, "--threads", threads, "--out", workdir / "attributions",
         "--no-progress")
    seconds = time.perf_counter() - started
    load.append(os.getloadavg()[0])
    _cli("metrics", workdir / "attributions", "--json", workdir / "metrics.json")
    return {"model": model, "n_questions": n_questions, "budget": budget, "question_seed": QUESTION_SEED,
            "explain_seconds": round(seconds, 1), "load": load, "rows": _ground_truth(workdir / "metrics.json")}


def measure_paper(paper: Path, workdir: Path, models: Sequence[str] = PAPER_MODELS,
                  benchmarks: Sequence[str] = PAPER_BENCHMARKS) -> list[dict[str, Any]]:
    """The paper's published tables under ``paper`` (its ``subsets/``, ``answers/``, ``shapley/``) imported
    and measured; their ground-truth rows."""
    _cli("build", "pollard2025", paper, "--out", workdir / "paper_questions")
    for model in models:
        for bench in benchmarks:
            _cli("import-paper", paper / "shapley" / model / bench, "--questions", workdir / "paper_questions",
                 "--config", bench, "--model", model, "--out", workdir / "paper_attributions")
    _cli("metrics", workdir / "paper_attributions", "--json", workdir / "paper_metrics.json")
    return _ground_truth(workdir / "paper_metrics.json")


def modalities_table(record: dict[str, Any]) -> str:
    """The Markdown table: the demo model's ground-truth row, then the paper's rows (two decimals,
    95% bootstrap intervals over questions in brackets for the demo model)."""
    lines = [f"| model | questions | n | {' | '.join(METRIC_HEADERS)} |",
             "|---|---|---:|" + "---:|" * len(METRIC_HEADERS)]
    for r in record["model"]["rows"]:
        cells = [f"{r[k]:.2f} ({r['ci'][k][0]:.2f}–{r['ci'][k][1]:.2f})" for k in METRIC_COLUMNS]
        lines.append(f"| **{record['model']['model']}** | synthetic, EgoSchema length | "
                     f"{r['n_questions']} | " + " | ".join(cells) + " |")
    for r in record["paper_rows"]:
        lines.append(f"| {r['model']} (paper) | {r['benchmark']} | {r['n_questions']} | {metric_cells(r)} |")
    return "\n".join(lines) + "\n"


def update_doc(record: dict[str, Any], page: Path) -> None:
    """Replace the table between the markers of ``page`` by :func:`modalities_table`."""
    update_file(page, TABLE_START, TABLE_END, modalities_table(record))
