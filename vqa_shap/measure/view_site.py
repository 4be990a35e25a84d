"""How long ``vqa-shap view`` takes on a large config: synthetic attribution rows, timed end to end.

:func:`synthetic_attributions` makes rows shaped like a real run (frames, question words, option
words, φ and stderr per option, some error rows) without any model, so a site of thousands of
questions can be built in a test or a benchmark (``scripts/bench_view.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from vqa_shap.schema.records import Attribution, Feature
from vqa_shap.measure.doc_tables import markers, replace_between, update_file
from vqa_shap.measure.stats import mean_ci

_WORDS = ("what", "colour", "was", "the", "shape", "shown", "in", "video", "red", "blue", "circle", "square",
          "green", "yellow", "triangle", "star", "purple", "diamond")
TASKS = ("colour_of_shape", "shape_of_colour", "shape_shown")
BENCHMARKS = ("synthetic", "egoschema")


def synthetic_attributions(n: int, *, n_frames: int = 8, n_options: int = 5, seed: int = 0,
                           model: str = "demo", variant: str = "original", error_every: int = 97) -> list[Attribution]:
    """``n`` random attribution rows (every ``error_every``-th an error row), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        qid = f"q{i:05d}"
        bench, task = BENCHMARKS[i % len(BENCHMARKS)], TASKS[i % len(TASKS)]
        answer = int(rng.integers(n_options))
        if error_every and i % error_every == error_every - 1:
            rows.append(Attribution(qid, bench, task, variant, model, "synthetic", "pollard2025", (), [],
                                    answer=answer, error="synthetic failure"))
            continue
        features = [Feature(f"frame_{j}", "video", input=0, time=0.5 * j) for j in range(n_frames)]
        features += [Feature(str(w), "question") for w in rng.choice(_WORDS, size=int(rng.integers(5, 10)))]
        for k in range(n_options):
            features += [Feature(str(w), "answer", option=k) for w in rng.choice(_WORDS, size=int(rng.integers(1, 4)))]
        phi = rng.normal(size=(len(features), n_options))
        rows.append(Attribution(qid, bench, task, variant, model, "synthetic", "pollard2025", tuple(features), phi,
                                stderr=np.abs(rng.normal(scale=0.1, size=phi.shape)), value_full=tuple(phi.sum(0)),
                                value_empty=(0.0,) * n_options, answer=answer, prediction=int(rng.integers(n_options)),
                                estimator="synthetic", budget=400, evaluations=400, seed=seed, runtime_s=0.1))
    return rows


def bench_view(folder: Path | str, *, n_questions: int = 5000, seeds: tuple[int, ...] = (0, 1, 2),
               bootstrap: int = 200) -> dict[str, Any]:
    """Build the site of ``n_questions`` synthetic rows once per seed (one distinct dataset each).

    Each run writes the rows as a Hub-style attributions folder and times ``vqa-shap view`` on it
    (loading the parquet, metrics with intervals, the data files; no videos), so the figure is what
    a user waits for. Returns the seconds of every run with their mean and 95% t-interval.
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.cli import main
    from vqa_shap.schema.arrow import attribution_features

    folder = Path(folder)
    load_before = list(os.getloadavg())
    runs = []
    for seed in seeds:
        data, site = folder / f"attributions-{seed}", folder / f"site-{seed}"
        hub.write_config(data, "demo__synthetic", [a.to_row() for a in synthetic_attributions(n_questions, seed=seed)],
                         features=attribution_features(), kind="attributions")
        started = time.perf_counter()
        status = main(["view", str(data), "--out", str(site), "--bootstrap", str(bootstrap), "--no-progress"])
        seconds = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"vqa-shap view exited with {status} on seed {seed}")
        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
        runs.append({"seed": seed, "seconds": seconds, "site_bytes": size})
    secs = np.array([r["seconds"] for r in runs])
    _, half = mean_ci(secs)
    return {"n_questions": n_questions, "bootstrap": bootstrap, "runs": runs, "mean_s": float(secs.mean()),
            "ci95_s": [float(secs.mean() - half), float(secs.mean() + half)], "loadavg_before": load_before,
            "loadavg_after": list(os.getloadavg())}


#: Markers of the generated table in docs/viewer.md.
DOC_START, DOC_END = markers("view-bench")


def render_table(report: dict[str, Any]) -> str:
    """The Markdown table of a :func:`bench_view` report (docs/viewer.md between :data:`DOC_START`/:data:`DOC_END`)."""
    lo, hi = report["ci95_s"]
    load = ", ".join(f"{x:.1f}" for x in report["loadavg_before"])
    mib = np.mean([r["site_bytes"] for r in report["runs"]]) / 2**20
    return (f"| questions | datasets (seeds) | build time, mean [95% CI] | site size | machine load (1/5/15 min) |\n"
            f"|---|---|---|---|---|\n"
            f"| {report['n_questions']:,} | {len(report['runs'])} ({', '.join(str(r['seed']) for r in report['runs'])}) "
            f"| {report['mean_s']:.1f} s [{lo:.1f}, {hi:.1f}] | {mib:.0f} MiB | {load} |\n")


def render_doc(text: str, report: dict[str, Any]) -> str:
    """``text`` with the generated table replaced by :func:`render_table` of ``report``."""
    return replace_between(text, DOC_START, DOC_END, render_table(report))


def update_doc(doc_path: str | os.PathLike, report: dict[str, Any]) -> bool:
    """:func:`render_doc` on the file ``doc_path``; ``True`` if it changed."""
    return update_file(doc_path, DOC_START, DOC_END, render_table(report))
