"""The loader benchmark: workloads, the side-by-side question timing, per-evaluation costs, the docs table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqa_shap.measure import loaders as bench  # noqa: E402
from vqa_shap.measure.stats import mean_ci  # noqa: E402
from vqa_shap.loaders import get_loader  # noqa: E402
from vqa_shap.loaders.testing.tiny import tiny_model_dir  # noqa: E402
from vqa_shap.protocol import get_protocol  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH_JSON = ROOT / "benchmarks" / "bench_loader.json"
DOC = ROOT / "docs" / "performance-loader.md"


def test_workloads():
    perm = bench.workload(10, 3, "permutation", 21, seed=1)
    assert perm.shape == (21, 10) and perm.all(1).sum() == 1 and (~perm).all(1).sum() == 2
    assert perm.sum(1).tolist().count(5) == 2  # each size appears on the way up and on the way down
    keys = [r[:3].tobytes() for r in perm]
    assert keys == sorted(keys)  # grouped by video part
    grouped = bench.workload(10, 3, "grouped", 32, seed=1)
    assert len({r[:3].tobytes() for r in grouped}) <= 2
    assert bench.workload(10, 3, "random", 5).shape == (5, 10)
    with pytest.raises(ValueError, match="unknown workload"):
        bench.workload(10, 3, "nope", 5)


@pytest.fixture(scope="module")
def small_loader(tmp_path_factory):
    torch.set_num_threads(1)
    return get_loader("llava_onevision").load(str(tiny_model_dir("llava_onevision",
                                                                 cache_dir=tmp_path_factory.mktemp("tiny"))))


def test_question_timing_runs_both_ways_at_equal_budget(small_loader):
    run = bench.time_question(small_loader, 1, 0, realistic=False, paper_first=False)
    question, plan, _ = bench.benchmark_question(realistic=False, seed=1)
    assert run.n_features == len(get_protocol().features(question, plan))
    assert run.evaluations == 2 * run.n_features + 1  # one antithetic permutation, as shap samples it
    assert run.speedup == pytest.approx(run.paper_s / run.ours_s) and run.paper_s > 0 and run.ours_s > 0
    whole = len(small_loader.token_ids(*_prepared(small_loader, 1)))
    assert 0 < run.tokens_per_evaluation < whole  # prefixes were shared
    assert len(run.load) == 3 and run.paper_first is False


def _prepared(loader, seed):
    question, plan, frames = bench.benchmark_question(realistic=False, seed=seed)
    prepared = loader.prepare(question, frames, plan, get_protocol())
    return prepared, np.ones(prepared.n_features, dtype=bool)


def test_per_evaluation_costs_are_all_measured(small_loader):
    prepared, _ = _prepared(small_loader, 0)
    costs = bench.per_evaluation_costs(small_loader, prepared, repeats=1)
    assert set(costs) == set(bench.PRIMITIVES) | {"video_prefix_step"}
    assert all(np.isfinite(v) and v > 0 for v in costs.values())


def test_mean_ci_is_students_t():
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(3.182446305 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert np.isnan(mean_ci([5.0])[1])


def test_render_doc_replaces_only_between_markers():
    report = json.loads(BENCH_JSON.read_text())
    text = f"intro\n{bench.TABLE_START}\nold\n{bench.TABLE_END}\noutro\n"
    out = bench.render_doc(text, report)
    assert out.startswith("intro\n") and out.endswith("\noutro\n") and "old" not in out
    assert bench.render_table(report) in out
    with pytest.raises(ValueError, match="markers"):
        bench.render_doc("no markers", report)


def test_docs_table_agrees_with_the_committed_benchmark():
    report = json.loads(BENCH_JSON.read_text())
    doc = DOC.read_text()
    assert bench.render_doc(doc, report) == doc, "regenerate: python scripts/bench_loader.py --from-json " \
        "benchmarks/bench_loader.json --doc docs/performance-loader.md"
    s = report["summary"]
    assert f"**{s['speedup'][0]:.2f}x ± {s['speedup'][1]:.2f}x**" in doc
    assert len(report["runs"]) >= 4 and report["threads"] == 1
    assert len({r["question"] for r in report["runs"]}) >= 2 and len({r["seed"] for r in report["runs"]}) >= 2


def test_processor_once_gives_the_paper_the_same_inputs_as_the_processor_per_mask(small_loader):
    from vqa_shap.measure.paper_pipeline import paper_score

    prepared, _ = _prepared(small_loader, 2)
    rng = np.random.default_rng(0)
    masks = rng.random((3, prepared.n_features)) < 0.5
    per_mask = [paper_score(small_loader, prepared, m, max_new_tokens=2) for m in masks]
    with bench.processor_once(small_loader, prepared):
        once = [paper_score(small_loader, prepared, m, max_new_tokens=2) for m in masks]
        inputs = small_loader.pixel_inputs(prepared, masks[0])
    reference = type(small_loader).pixel_inputs(small_loader, prepared, masks[0])
    assert inputs["input_ids"].tolist() == reference["input_ids"].tolist()
    assert torch.allclose(inputs["pixel_values_videos"], reference["pixel_values_videos"])
    for a, b in zip(per_mask, once):
        assert a.generated == b.generated and np.abs(a.logits - b.logits).max() <= 1e-5
    assert "pixel_inputs" not in vars(small_loader)  # the loader's own method again
