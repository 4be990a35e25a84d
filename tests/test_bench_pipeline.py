"""The paper's pipeline (shap, batch 1, processor + generate per mask, letter scan) and the side-by-side
benchmark against vqa-shap's, on the committed demo model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.bench.pipeline import format_table, relative_error, run_pipeline_bench, synthetic_cases
from vqa_shap.bench.paper_pipeline import letter_step, paper_score, paper_shapley

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(1)
    cls, checkpoint = resolve_model("demo")
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    cases = synthetic_cases(2, seed=50_000_005, workdir=tmp_path_factory.mktemp("synthetic"))
    return loader, cases


def test_letter_step_scans_letters_alphabetically():
    a, b, c = 10, 11, 12
    assert letter_step([5, b, a], [a, b, c]) == 2      # A is looked for first, wherever it is
    assert letter_step([b, 7, b], [a, b, c]) == 0      # first position of the first letter found
    assert letter_step([7, 8], [a, b, c]) == 0         # no letter generated: step 0
    assert letter_step([], [a]) == 0


def test_relative_error():
    ref = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert relative_error(ref, ref) == 0.0
    assert relative_error(ref * 1.1, ref) == pytest.approx(0.1)
    assert relative_error(np.ones((2, 2)), np.zeros((2, 2))) == pytest.approx(2.0)


def test_paper_score_equals_the_cached_score_on_the_demo_model(demo):
    from vqa_shap.protocol import get_protocol

    loader, cases = demo
    case = cases[0]
    prepared = loader.prepare(case.question, case.frames, case.plan, get_protocol())
    rng = np.random.default_rng(0)
    masks = np.concatenate([np.ones((1, prepared.n_features), bool), rng.random((4, prepared.n_features)) < 0.5])
    ours = loader.score(prepared, masks)
    letters_first = 0
    for mask, row in zip(masks, ours):
        score = paper_score(loader, prepared, mask)
        if score.step == 0:  # the letter came first: the read-out is the next-token logits of the prompt
            letters_first += 1
            np.testing.assert_allclose(score.logits, row, atol=1e-4)
    assert letters_first >= 3
    # unmasked, the trained model answers with the letter, then <|im_end|>: generation stops there
    full = paper_score(loader, prepared, masks[0])
    assert full.step == 0 and full.generated[-1] == loader.tokenizer.eos_token_id and len(full.generated) == 2
    assert loader.tokenizer.convert_ids_to_tokens(full.generated[0]) == loader.letters[case.question.answer]


def test_paper_shapley_is_shaps_permutation_sampling(demo):
    """With the same seed and budget, the paper's pipeline (shap, batch 1) and vqa-shap's ``permutation``
    estimator over the same read-out give the same Shapley values (the same permutations)."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game
    from vqa_shap.protocol import get_protocol

    loader, cases = demo
    case = cases[1]
    prepared = loader.prepare(case.question, case.frames, case.plan, get_protocol())
    budget = 2 * prepared.n_features + 1
    paper = paper_shapley(loader, prepared, budget, seed=0)
    assert paper.evaluations == budget and sum(paper.steps.values()) == budget

    def readout(coalitions):
        return np.stack([paper_score(loader, prepared, m).logits for m in coalitions])

    game = Game(readout, prepared.n_features, video_features=prepared.n_video)
    ours = get_estimator("permutation").estimate(game, budget, 0)
    assert paper.values.shape == ours.values.shape == (prepared.n_features, case.question.n_options)
    np.testing.assert_allclose(paper.values, ours.values, atol=1e-4)


@pytest.mark.slow
def test_pipeline_bench_runs_side_by_side(demo):
    loader, cases = demo
    bench = run_pipeline_bench(loader, cases[:1], model="demo", permutations=2, fractions=(1.0, 0.5),
                               estimators=("default",), reference_permutations=3, agreement_rows=2,
                               progress=False)
    paper, *ours = bench.rows
    assert paper.method == "paper" and paper.speedup == 1.0
    assert [r.fraction for r in ours] == [1.0, 0.5]
    assert sum(bench.paper_steps.values()) == paper.evaluations
    # where the masked model answers with a letter first, the paper's read-out is vqa-shap's score
    # (4 coalitions checked: all kept, none kept, 2 random; at least the all-kept one is compared)
    assert bench.value_agreement < 1e-3 and 0 <= bench.agreement_later_step < 4
    assert all(r.seconds_per_question > 0 and r.evals_per_s > 0 and r.error >= 0 for r in bench.rows)
    assert ours[0].speedup > 1.0
    text = format_table(bench)
    assert "| paper (shap, batch 1" in text and "vqa-shap | default" in text
    json.dumps(bench.to_dict())


@pytest.mark.slow
def test_bench_pipeline_script_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_pipeline.py"), "--models", "demo", "--questions", "1",
         "--permutations", "1", "--fractions", "1", "--estimators", "default", "--reference-permutations", "2",
         "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    rows = data["models"]["demo"]["rows"]
    assert [r["method"] for r in rows] == ["paper", "vqa-shap"]
    assert "speed-up" in done.stdout
