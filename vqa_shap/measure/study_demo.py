"""The bundled demo study measured (``scripts/bench_study.py``): one ``vqa-shap run demo`` from an empty
folder and a second run, timed with the machine load, and the ground-truth metrics of each config, written
as JSON; the table in docs/study.md is rendered from that JSON (:func:`metrics_table`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from vqa_shap.analysis.metrics_table import METRIC_COLUMNS, METRIC_HEADERS, metric_cells
from vqa_shap.measure.doc_tables import markers, update_file

#: The markers around the generated table in docs/study.md.
TABLE_START, TABLE_END = markers("study-demo-table")


def measure(out: Path) -> dict[str, Any]:
    """Run the bundled demo study into the empty folder ``out`` twice; the record of both runs."""
    import json
    import resource

    from vqa_shap.study.study_run import run_study
    from vqa_shap.study.spec import load_study

    study = load_study("demo")
    load_start = os.getloadavg()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    first = run_study(study, out, progress=False)
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu_start
    load_end = os.getloadavg()
    started = time.perf_counter()
    second = run_study(study, out, progress=False)
    rows = json.loads((out / "metrics.json").read_text())
    return {
        "command": "vqa-shap run demo", "study": str(study.path.name),
        "first_run": {"wall_s": round(first.seconds, 1), "cpu_user_s": round(cpu, 1), "steps": len(first.ran),
                      "evaluations": first.evaluations, "loadavg_start": load_start, "loadavg_end": load_end},
        "second_run": {"wall_s": round(time.perf_counter() - started, 1), "steps": len(second.ran),
                       "evaluations": second.evaluations},
        "ground_truth_rows": [{k: r[k] for k in ("config", "variant", "n_questions", *METRIC_COLUMNS)}
                              for r in rows if r["signal"] == "Ground Truth"],
    }


def metrics_table(record: dict[str, Any]) -> str:
    """The Markdown table of the record's ground-truth rows (two decimals)."""
    lines = [f"| config | variant | n | {' | '.join(METRIC_HEADERS)} |",
             "|---|---|---:|" + "---:|" * len(METRIC_HEADERS)]
    for r in record["ground_truth_rows"]:
        lines.append(f"| {r['config']} | {r['variant']} | {r['n_questions']} | {metric_cells(r)} |")
    return "\n".join(lines) + "\n"


def update_docs(record: dict[str, Any], page: Path) -> None:
    """Replace the table between the markers of ``page`` by :func:`metrics_table`."""
    update_file(page, TABLE_START, TABLE_END, metrics_table(record))
