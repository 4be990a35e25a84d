"""The loader benchmark's workloads and its side-by-side runner (tiny model, a few coalitions)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqa_shap.bench import loaders as bench  # noqa: E402
from vqa_shap.loaders import get_loader  # noqa: E402
from vqa_shap.loaders.tiny import tiny_model_dir  # noqa: E402
from vqa_shap.protocol import get_protocol  # noqa: E402


def test_workloads():
    perm = bench.workload(10, 3, "permutation", 21, seed=1)
    assert perm.shape == (21, 10) and perm.all(1).sum() == 1 and (~perm).all(1).sum() == 2
    assert perm.sum(1).tolist().count(5) == 2  # each size appears on the way up and on the way down
    keys = [r[:3].tobytes() for r in perm]
    assert keys == sorted(keys)  # grouped by video part, as the Game sends coalitions
    grouped = bench.workload(10, 3, "grouped", 32, seed=1)
    assert len({r[:3].tobytes() for r in grouped}) <= 2
    assert bench.workload(10, 3, "random", 5).shape == (5, 10)
    with pytest.raises(ValueError, match="unknown workload"):
        bench.workload(10, 3, "nope", 5)


def test_benchmark_runs_all_modes_with_equal_scores(tmp_path):
    torch.set_num_threads(1)
    loader = get_loader("llava_onevision").load(str(tiny_model_dir("llava_onevision", cache_dir=tmp_path)))
    question, plan, frames = bench.benchmark_question(realistic=False)
    prepared = loader.prepare(question, frames, plan, get_protocol())
    masks = bench.workload(prepared.n_features, prepared.n_video, "grouped", 6)
    results = bench.run(loader, prepared, masks, batch_size=3, repeats=1, pixel_rows=2, chunk=3)
    assert [r.mode for r in results] == list(bench.MODES)
    assert results[0].speedup == pytest.approx(1.0)
    assert all(r.evals_per_s > 0 and r.max_abs_diff <= 1e-5 for r in results)
    assert (loader.batch_size, loader.prefix_sharing) == (8, True)  # settings restored
