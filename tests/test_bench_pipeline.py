"""The paper's pipeline (shap, batch 1, generate per mask, letter scan), the side-by-side benchmark against
vqa-shap's, its statistics (equal-error speed-up, CIs) and the generated performance doc."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.measure.paper_pipeline import PaperInputs, letter_step, paper_score, paper_shapley
from vqa_shap.measure.bench_cases import realistic_cases, synthetic_cases
from vqa_shap.measure.pipeline import run_pipeline_bench
from vqa_shap.measure.stats import mean_ci, relative_l2_error
from vqa_shap.measure.pipeline_report import (END, START, equal_error_speedup, format_table, markers,
                                            render_doc, smallest_mean_error, summarise, time_at_error,
                                            trusted_questions)

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "benchmarks" / "bench_pipeline.json"
#: the run at the paper's own budget (5000 evaluations = 18 permutations at F ~ 130)
PAPER_BUDGET_JSON = ROOT / "benchmarks" / "bench_pipeline_paper_budget.json"
DEMO_LONG_JSON = ROOT / "benchmarks" / "bench_pipeline_demo_long.json"
DOC = ROOT / "docs" / "performance.md"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import torch

    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(1)
    cls, checkpoint = resolve_model("demo")
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    cases = synthetic_cases(2, seed=50_000_005, workdir=tmp_path_factory.mktemp("synthetic"))
    return loader, cases


def _prepared(demo, i=0):
    from vqa_shap.protocol import get_protocol

    loader, cases = demo
    case = cases[i]
    return loader, case, loader.prepare(case.question, case.frames, case.plan, get_protocol())


# ------------------------------------------------------------------ the paper's read-out and inputs


def test_letter_step_scans_letters_alphabetically():
    a, b, c = 10, 11, 12
    assert letter_step([5, b, a], [a, b, c]) == 2      # A is looked for first, wherever it is
    assert letter_step([b, 7, b], [a, b, c]) == 0      # first position of the first letter found
    assert letter_step([7, 8], [a, b, c]) == 0         # no letter generated: step 0
    assert letter_step([], [a]) == 0


def test_relative_l2_error_is_the_actual_error_against_the_reference():
    ref = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert relative_l2_error(ref, ref) == 0.0
    assert relative_l2_error(ref * 1.1, ref) == pytest.approx(0.1)
    assert relative_l2_error(np.ones((2, 2)), np.zeros((2, 2))) == pytest.approx(2.0)


def test_paper_score_equals_the_cached_score_on_the_demo_model(demo):
    loader, case, prepared = _prepared(demo)
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


def test_pixels_preprocessed_once_equal_the_processor_per_mask(demo):
    """The LLaVA-Video way (processor once, the mask multiplies the normalised pixels) builds the same
    model inputs as running the processor on every masked input."""
    loader, _, prepared = _prepared(demo)
    once, per_mask = PaperInputs(loader, prepared, "once"), PaperInputs(loader, prepared, "per_mask")
    rng = np.random.default_rng(1)
    masks = np.concatenate([np.zeros((1, prepared.n_features), bool), rng.random((3, prepared.n_features)) < 0.5])
    for mask in masks:
        a, b = once(mask), per_mask(mask)
        assert a["input_ids"].tolist() == b["input_ids"].tolist()
        np.testing.assert_allclose(a["pixel_values_videos"].numpy(), b["pixel_values_videos"].numpy(), atol=1e-6)
    assert float(np.abs(once(masks[0])["pixel_values_videos"].numpy()).max()) == 0.0  # all frames masked
    assert float(np.abs(once.base["pixel_values_videos"].numpy()).max()) > 0.0        # the base is untouched
    with pytest.raises(Exception, match="unknown preprocess"):
        PaperInputs(loader, prepared, "twice")


def test_paper_shapley_is_shaps_permutation_sampling(demo):
    """With the same seed and budget, the paper's pipeline (shap, batch 1) and vqa-shap's ``permutation``
    estimator over the same read-out give the same Shapley values (the same permutations)."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game

    loader, case, prepared = _prepared(demo, 1)
    budget = 2 * prepared.n_features + 1
    paper = paper_shapley(loader, prepared, budget, seed=0)
    assert paper.evaluations == budget and sum(paper.steps.values()) == budget

    def readout(coalitions):
        return np.stack([paper_score(loader, prepared, m).logits for m in coalitions])

    game = Game(readout, prepared.n_features, video_features=prepared.n_video)
    ours = get_estimator("permutation").estimate(game, budget, 0)
    assert paper.values.shape == ours.values.shape == (prepared.n_features, case.question.n_options)
    np.testing.assert_allclose(paper.values, ours.values, atol=1e-4)


def test_realistic_questions_are_distinct():
    cases = realistic_cases(8)
    assert len({c.question.question for c in cases}) == 8
    assert len({c.question.options for c in cases}) == 8
    assert len({c.frames[0].tobytes() for c in cases}) == 8
    assert all(c.frames[0].shape[0] == 32 for c in cases)


def test_the_committed_realistic_questions_are_asked_again():
    """A rerun of the benchmark asks the committed questions: the same texts and player counts (options
    with "zip bag", e.g. bench-1, count one word more than the builder's "bag" would)."""
    from vqa_shap.measure.bench_cases import realistic_question
    from vqa_shap.protocol import get_protocol

    protocol, checked = get_protocol("pollard2025"), 0
    for path in (JSON, PAPER_BUDGET_JSON):
        for recorded in json.loads(path.read_text())["models"]["realistic"]["questions"]:
            question, plan, _ = realistic_question(int(recorded["qid"].removeprefix("bench-")))
            assert question.question == recorded["question"], recorded["qid"]
            assert len(protocol.features(question, plan, 1)) == recorded["n_features"], recorded["qid"]
            checked += any("zip bag" in option for option in question.options)
    assert checked >= 2


def test_long_video_cases_slice_the_short_evidence_questions(tmp_path):
    from vqa_shap.measure.bench_cases import long_video_cases
    from vqa_shap.builders.shapes_long_video import SHORT_TOTAL

    cases = long_video_cases(3, seed=7, workdir=tmp_path / "a")
    later = long_video_cases(2, seed=7, workdir=tmp_path / "b", start=1)
    assert [c.question.qid for c in cases[1:]] == [c.question.qid for c in later]
    assert all(len(c.plan.frames) == SHORT_TOTAL and c.frames[0].shape[0] == SHORT_TOTAL for c in cases)
    assert [f.index for f in cases[0].plan.frames] == list(range(SHORT_TOTAL))  # every frame of the video


def test_estimator_specs_carry_options():
    from vqa_shap.estimators import get_estimator
    from vqa_shap.estimators.base import EstimatorError

    assert get_estimator("shared_video:per_video=8").config["per_video"] == 8
    assert get_estimator("shared_video").config["per_video"] == 4
    with pytest.raises(EstimatorError):
        get_estimator("shared_video:per_vid=8")


# ------------------------------------------------------------------ statistics on hand-made curves


def test_mean_ci_is_the_student_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(mean_ci([5.0])[1]) and mean_ci([5.0])[0] == 5.0  # NaN, not 0.0, for one value
    assert all(math.isnan(v) for v in mean_ci([]))


def test_time_at_error_interpolates_log_log():
    # e = 0.3 at t = 1, 0.15 at t = 2: slope -1 in log-log, so e = 0.2 at t = 1.5
    assert time_at_error([1.0, 2.0], [0.3, 0.15], 0.2) == (pytest.approx(1.5), False)
    # a power law e = t^-1/2 is recovered exactly between any two of its points, in any order
    t = np.array([16.0, 1.0, 4.0])
    assert time_at_error(t, t ** -0.5, 0.25)[0] == pytest.approx(16.0)
    assert time_at_error(t, t ** -0.5, 1 / 3) == (pytest.approx(9.0), False)
    # beyond the measured errors: the end segment is extended, and flagged
    assert time_at_error(t, t ** -0.5, 0.125) == (pytest.approx(64.0), True)
    assert time_at_error(t, t ** -0.5, 2.0) == (pytest.approx(0.25), True)
    # one point: slope -1/2
    assert time_at_error([4.0], [0.5], 0.25) == (pytest.approx(16.0), True)
    # an error that does not fall with compute cannot be extended
    assert math.isnan(time_at_error([1.0, 2.0], [0.2, 0.3], 0.1)[0])
    # a nearly flat curve: the target is out of reach, not an OverflowError
    far, extrapolated = time_at_error([1.0, 2.0], [0.2, 0.2 - 1e-12], 0.1)
    assert far > 1e300 and extrapolated


def test_equal_error_speedup_uses_the_papers_error_at_its_largest_budget():
    paper = (np.array([10.0, 20.0, 40.0]), np.array([0.4, 0.4 / math.sqrt(2), 0.2]))
    ours = (np.array([1.0, 2.0]), np.array([0.3, 0.15]))
    speedup, target, extrapolated = equal_error_speedup(paper, ours)
    assert target == 0.2 and not extrapolated
    assert speedup == pytest.approx(40.0 / 1.5)  # never the best row: 40 / 2 = 20 or 40 / 1 = 40


def _runs(scale):
    """Records of 4 questions x 3 seeds: the paper's error ∝ budget^-1/2 at 1 s per permutation, ours the
    same at 0.1 s, ours' errors scaled by ``scale(q, s)``."""
    runs = []
    for q in range(4):
        for s in range(3):
            for pipeline, cost in (("paper", 1.0), ("vqa-shap", 0.1)):
                for level in (1.0, 2.0, 4.0):
                    factor = scale(q, s) if pipeline == "vqa-shap" else 1.0
                    runs.append({"pipeline": pipeline, "level": level, "question": q, "seed": s,
                                 "error": factor * level ** -0.5, "seconds": cost * level, "evaluations": level * 10})
    return runs


def test_summarise_speedup_and_its_bootstrap_ci():
    exact = summarise(_runs(lambda q, s: 1.0), range(4), n_boot=200)
    assert exact["speedup"] == pytest.approx(10.0) and exact["speedup_ci"] == pytest.approx([10.0, 10.0])
    assert [r["pipeline"] for r in exact["rows"]] == ["paper"] * 3 + ["vqa-shap"] * 3
    assert exact["rows"][0]["error_ci"] == 0.0 and exact["rows"][0]["evaluations"] == 10.0
    # noise across questions and seeds: the CI widens around the point estimate, deterministically
    noisy = summarise(_runs(lambda q, s: 1.0 + 0.1 * ((q * 3 + s) % 5)), range(4), n_boot=300)
    lo, hi = noisy["speedup_ci"]
    assert lo < noisy["speedup"] < hi and hi - lo > 0.1
    assert summarise(_runs(lambda q, s: 1.0 + 0.1 * ((q * 3 + s) % 5)), range(4), n_boot=300) == noisy
    # a subset of questions: rows over those only
    assert summarise(_runs(lambda q, s: 1.0 + q), [1], n_boot=10)["rows"][3]["error"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="lacks a question or seed"):
        summarise(_runs(lambda q, s: 1.0)[:-1], range(4), n_boot=10)


# ------------------------------------------------------------------ tables and the doc


def test_render_doc_replaces_only_the_marked_section():
    report = json.loads(JSON.read_text())
    text = f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\noutro\n"
    done = render_doc(text, report)
    assert done.startswith("# Title\n\nintro\n\n" + START) and done.endswith(END + "\n\noutro\n")
    assert "old table" not in done
    for bench in report["models"].values():
        assert format_table(bench) in done
    assert render_doc(done, report) == done
    with pytest.raises(ValueError, match="markers"):
        render_doc("no markers", report)


def test_a_named_table_has_its_own_markers():
    """A second benchmark in the same page (``--doc-table NAME``) leaves the first table alone."""
    report = json.loads(JSON.read_text())
    start, end = markers("paper-budget")
    assert (start, end) != (START, END) and markers() == (START, END)
    text = f"{START}\nOLD-ONE\n{END}\n{start}\nOLD-TWO\n{end}\n"
    done = render_doc(text, report, "paper-budget")
    assert "OLD-ONE" in done and "OLD-TWO" not in done and format_table(report["models"]["realistic"]) in done
    with pytest.raises(ValueError, match="paper-budget"):
        render_doc(f"{START}\n{END}\n", report, "paper-budget")


@pytest.mark.parametrize("json_path, table", [(JSON, None), (PAPER_BUDGET_JSON, "paper-budget"),
                                              (DEMO_LONG_JSON, "demo-long")])
def test_performance_doc_equals_the_committed_json(json_path, table):
    """docs/performance.md's pipeline tables are what the committed benchmark JSONs regenerate."""
    report = json.loads(json_path.read_text())
    text = DOC.read_text()
    assert render_doc(text, report, table) == text
    for bench in report["models"].values():  # and the committed summary is what the committed runs give
        kept = [i for i in range(bench["n_questions"])
                if bench["settings"]["paper_mode"] == "sampled" or not bench["questions"][i]["readout_differs"]]
        assert summarise(bench["runs"], kept, n_boot=bench["summary"]["bootstrap"]) == bench["summary"]
        assert bench["summary"]["questions"] >= 8 and bench["summary"]["seeds"] >= 5


def test_merge_benches_recombines_a_split_run():
    """A run split over processes (disjoint questions) merges into the run over all of them."""
    from vqa_shap.measure.pipeline_report import merge_benches

    bench = json.loads(JSON.read_text())["models"]["realistic"]
    half = bench["n_questions"] // 2
    parts = []
    for lo, hi in ((0, half), (half, bench["n_questions"])):
        runs = [{**r, "question": r["question"] - lo} for r in bench["runs"] if lo <= r["question"] < hi]
        parts.append({**bench, "n_questions": hi - lo, "questions": bench["questions"][lo:hi], "runs": runs})
    merged = merge_benches(parts, n_boot=bench["summary"]["bootstrap"])
    for key in ("n_questions", "questions", "runs", "info", "summary"):
        assert merged[key] == bench[key], key
    with pytest.raises(ValueError, match="different models or settings"):
        merge_benches([parts[0], {**parts[1], "model": "other"}])
    with pytest.raises(ValueError, match="different models or settings"):
        merge_benches([parts[0], {**parts[1], "settings": {**parts[1]["settings"], "estimator": "other"}}])
    # waiting for a quiet machine changes when seeds start, not what they measure: kept per part
    waited = merge_benches([{**parts[0], "settings": {**parts[0]["settings"], "max_load": 1.5}}, parts[1]],
                           n_boot=bench["summary"]["bootstrap"])
    assert waited["summary"] == bench["summary"] and waited["settings"]["max_load"] == [1.5, None]


def test_script_regenerates_the_doc_from_json(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(f"x\n{START}\n{END}\n")
    script = str(ROOT / "scripts" / "bench_pipeline.py")
    done = subprocess.run([sys.executable, script, "--from-json", str(JSON), "--doc", str(doc)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert doc.read_text() == render_doc(f"x\n{START}\n{END}\n", json.loads(JSON.read_text()))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run([sys.executable, script, "--from-json", str(bad), "--doc", str(doc)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "bad.json" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------ a tiny end-to-end run


@pytest.mark.slow
def test_pipeline_bench_runs_side_by_side(demo):
    loader, cases = demo
    saved = []
    bench = run_pipeline_bench(loader, cases, model="demo", trained=True, seeds=(0, 1), paper_levels=(1, 2), ours_levels=(1,),
                               reference_permutations=4, timing_masks=3, n_boot=50, progress=False,
                               checkpoint=saved.append)
    # a checkpoint after every question but the last: the first question's runs, summarised on their own
    assert [b.n_questions for b in saved] == [1] and saved[0].runs == bench.runs[:6]
    assert saved[0].summary["questions"] == 1
    runs = bench.runs
    assert len(runs) == 2 * 2 * 3  # questions x seeds x (two paper budgets + one of ours)
    # interleaved per question and seed: paper budgets, then ours, in the records' order of levels
    paper = [r for r in runs if r.pipeline == "paper"]
    assert all(r.evaluations == r.budget == int(r.level) * (2 * bench.questions[r.question]["n_features"] + 1)
               for r in paper)
    assert all(r.seconds > 0 and r.error >= 0 for r in runs)
    by = {(r.question, r.seed, r.level): r for r in paper}
    for q in range(2):  # the paper's seconds are its budget times one measured rate per question and seed
        for s in range(2):
            assert by[(q, s, 2.0)].seconds > by[(q, s, 1.0)].seconds
    assert sum(q["readout_checked"] for q in bench.questions) == 2 * 2 * 3
    info = bench.info
    assert info["readout_differs"] < info["readout_checked"] and info["readout_max_diff"] < 1e-3
    assert bench.summary["questions"] == 2 and bench.summary["seeds"] == 2
    assert bench.summary["speedup"] > 0 and len(bench.summary["rows"]) == 3
    from vqa_shap.estimators import DEFAULT_ESTIMATOR

    assert bench.load["end"] and bench.settings["estimator"] == DEFAULT_ESTIMATOR  # the package's default
    text = format_table(json.loads(json.dumps(bench.to_dict())))
    assert "| paper (shap, batch 1, pixels preprocessed once" in text and "Speed-up at equal error" in text


@pytest.mark.slow
def test_pipeline_bench_full_mode_runs_the_paper_end_to_end(demo):
    loader, cases = demo
    sampled = run_pipeline_bench(loader, cases[:1], model="demo", trained=True, seeds=(0,), paper_levels=(1,), ours_levels=(1,),
                                 reference_permutations=2, timing_masks=2, n_boot=10, progress=False)
    full = run_pipeline_bench(loader, cases[:1], model="demo", trained=True, seeds=(0,), paper_levels=(1,), ours_levels=(1,),
                              reference_permutations=2, timing_masks=2, n_boot=10, progress=False,
                              paper_mode="full", preprocess="per_mask")
    assert full.settings["paper_mode"] == "full" and full.questions[0]["readout_checked"] == 2
    (paper_full,) = [r for r in full.runs if r.pipeline == "paper"]
    (paper_sampled,) = [r for r in sampled.runs if r.pipeline == "paper"]
    assert paper_full.evaluations == paper_sampled.evaluations == paper_full.budget
    assert paper_full.seconds > 0 and math.isfinite(paper_full.error)
    assert full.summary["rows"][0]["pipeline"] == "paper"


def test_demo_long_prose_states_the_committed_figures():
    """The figures docs/performance.md writes beside the demo-long table are the committed JSONs'."""
    text = DOC.read_text()
    summary = json.loads(DEMO_LONG_JSON.read_text())["models"]["demo-long"]["summary"]
    low, high = summary["speedup_ci"]
    assert f"**{summary['speedup']:.1f}× (95% CI {low:.1f}–{high:.1f})** at the paper's error" in text
    shared = json.loads((ROOT / "benchmarks" / "bench_pipeline_demo_long_shared_video.json").read_text())
    table = format_table(shared["models"]["demo-long"])
    assert "shared_video:per_video=8" in table and "0.80×" in table and "extrapolated" in table
    assert "(0.80×, extrapolated)" in text


def test_load_check_of_the_paper_budget_run_is_in_the_doc():
    """The per-question cost ratio beside the load, written under the paper-budget table, is the committed
    JSON's, and load does not inflate it (no question at load >= 4 beats every question below 4)."""
    from vqa_shap.measure.pipeline_report import cost_ratio_by_load, format_load_check

    bench = json.loads(PAPER_BUDGET_JSON.read_text())["models"]["realistic"]
    assert format_load_check(bench) in DOC.read_text()
    pairs = cost_ratio_by_load(bench)
    assert len(pairs) == bench["n_questions"] and [p[0] for p in pairs] == sorted(p[0] for p in pairs)
    quiet, busy = [r for load, r in pairs if load < 4], [r for load, r in pairs if load >= 4]
    assert quiet and busy and max(busy) <= max(quiet)


@pytest.mark.slow
def test_reference_grows_until_trusted_and_is_stored_once(demo, tmp_path):
    """The reference doubles its chunks until its own error is below a third of the smallest error it
    measures (or the cap); it is stored under the model's and question's digests and reused as is."""
    from vqa_shap.measure.bench_cases import case_digest
    from vqa_shap.measure.references import load_reference

    loader, cases = demo
    settings = dict(model="demo", trained=True, seeds=(0,), paper_levels=(1,), ours_levels=(1,),
                    reference_permutations=2, timing_masks=2, n_boot=10, progress=False)
    fixed = run_pipeline_bench(loader, cases[:1], **settings)
    grown = run_pipeline_bench(loader, cases[:1], **settings, reference_max_permutations=32,
                               references=tmp_path, model_key="demo-test")
    (q_fixed,), (q_grown,) = fixed.questions, grown.questions
    assert q_fixed["reference_permutations"] == 2 and not q_grown["reference_stored"]
    smallest = smallest_mean_error([(r.pipeline, r.level) for r in grown.runs], [r.error for r in grown.runs])
    assert q_grown["reference_permutations"] > 2
    assert q_grown["reference_noise"] < smallest / 3 or q_grown["reference_permutations"] == 32
    assert q_grown["reference_noise"] < q_fixed["reference_noise"]
    # the runs are the same estimates; only the reference they are measured against improved
    assert [(r.pipeline, r.evaluations) for r in fixed.runs] == [(r.pipeline, r.evaluations) for r in grown.runs]
    (stored_file,) = tmp_path.glob("*.json")
    chunk = 2 * q_grown["n_features"] + 1
    key = f"demo-test_{case_digest(cases[0])}_cyclic_{chunk}"
    stored = load_reference(key, tmp_path)
    assert stored_file.stem == key and stored.budget == q_grown["reference_permutations"] // 2 * chunk
    assert stored.own_error_all == pytest.approx(q_grown["reference_noise"], rel=1e-5)
    again = run_pipeline_bench(loader, cases[:1], **settings, reference_max_permutations=32,
                               references=tmp_path, model_key="demo-test")
    assert again.questions[0]["reference_stored"] and again.questions[0]["reference_seconds"] < q_grown["reference_seconds"]
    assert [r.error for r in again.runs] == pytest.approx([r.error for r in grown.runs], rel=1e-5)
    # the question's finished runs were stored per seed with the reference and reused as they were
    (runs_file,) = tmp_path.glob("*_runs_*.npz")
    assert runs_file.name.startswith(f"demo-test_{case_digest(cases[0])}_runs_") and runs_file.name.endswith("_seed0.npz")
    assert [r.seconds for r in again.runs] == [r.seconds for r in grown.runs]
    assert again.questions[0]["readout_checked"] == q_grown["readout_checked"]
    # a larger cap grows only the reference
    wider = run_pipeline_bench(loader, cases[:1], **settings, reference_max_permutations=64, reference_trust=1e3,
                               references=tmp_path, model_key="demo-test")
    assert [r.seconds for r in wider.runs] == [r.seconds for r in grown.runs]
    assert wider.questions[0]["reference_permutations"] == 64 > q_grown["reference_permutations"]
    # more seeds run only the new seed; each seed's runs record the machine's load
    more = run_pipeline_bench(loader, cases[:1], **{**settings, "seeds": (0, 1)}, reference_max_permutations=32,
                              references=tmp_path, model_key="demo-test")
    assert sorted(path.name[-9:] for path in tmp_path.glob("*_runs_*.npz")) == ["seed0.npz", "seed1.npz"]
    assert [r.seconds for r in more.runs if r.seed == 0] == [r.seconds for r in grown.runs]
    assert {r.seed for r in more.runs} == {0, 1} and all(np.isfinite(r.load) for r in more.runs)
    assert more.questions[0]["readout_checked"] == 2 * q_grown["readout_checked"]


def test_stored_runs_depend_on_every_run_setting_but_the_seeds():
    from vqa_shap.measure.pipeline import _runs_digest

    cfg = dict(paper_levels=[1.0], ours_levels=[1.0], estimator="auto", paper_mode="sampled", preprocess="once",
               timing_masks=8, max_new_tokens=16, batch_size=16, threads=1, seeds=[0], max_load=None)
    assert _runs_digest({**cfg, "seeds": [0, 1, 2], "max_load": 1.5}) == _runs_digest(cfg)
    for key, value in [("estimator", "centred_msr"), ("ours_levels", [2.0]), ("threads", 2), ("paper_mode", "full")]:
        assert _runs_digest({**cfg, key: value}) != _runs_digest(cfg)


def test_stored_runs_of_the_default_depend_on_its_rule(monkeypatch):
    from vqa_shap.estimators import auto
    from vqa_shap.measure.pipeline import _runs_digest

    cfg = dict(paper_levels=[1.0], ours_levels=[1.0], estimator="auto", paper_mode="sampled", preprocess="once",
               timing_masks=8, max_new_tokens=16, batch_size=16, threads=1)
    before, forest = _runs_digest(cfg), _runs_digest({**cfg, "estimator": "forest_msr"})
    alias = _runs_digest({**cfg, "estimator": "default"})
    monkeypatch.setattr(auto, "ROUGH_PILOT_ERROR", 0.5)
    assert _runs_digest(cfg) != before and _runs_digest({**cfg, "estimator": "default"}) != alias
    assert _runs_digest({**cfg, "estimator": "forest_msr"}) == forest     # a named estimator has no rule


def test_a_seed_waits_for_a_quiet_machine(monkeypatch):
    """Before a seed's runs the bench sleeps while the 1-minute load is above the cap, and says so once."""
    from vqa_shap.measure import pipeline

    loads = iter([3.0, 3.0, 2.0, 1.2])
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr(pipeline.time, "sleep", lambda seconds: None)
    said = []
    assert pipeline.wait_for_quiet(1.5, said.append, poll_seconds=20.0) == 40.0
    assert len(said) == 1 and "waiting" in said[0]
    assert pipeline.wait_for_quiet(None, said.append) == 0.0


def test_the_first_look_on_the_trained_realistic_model_is_in_the_doc():
    """The small-budget run on the trained realistic-proportion model: its table in docs/performance.md is
    what its committed JSON regenerates, its summary what its runs give, and it says it is trained."""
    path = ROOT / "benchmarks" / "bench_pipeline_demo_realistic_first_look.json"
    report = json.loads(path.read_text())
    text = DOC.read_text()
    assert render_doc(text, report, "demo-realistic-first-look") == text
    bench = report["models"]["demo-realistic"]
    assert bench["trained"] is True and bench["info"]["n_features"] >= 120
    assert summarise(bench["runs"], list(range(bench["n_questions"])), n_boot=bench["summary"]["bootstrap"]) == \
        bench["summary"]
    assert all(trusted_questions(bench))


def test_a_reference_is_judged_by_the_mean_errors_of_its_own_question():
    """Each question's reference against its own rows (means over seeds), not the table's or one run's."""
    runs = [{"question": 0, "pipeline": "paper", "level": 1.0, "error": 0.2},
            {"question": 0, "pipeline": "paper", "level": 1.0, "error": 0.6},
            {"question": 0, "pipeline": "vqa-shap", "level": 1.0, "error": 0.5},
            {"question": 1, "pipeline": "paper", "level": 1.0, "error": 0.9}]
    assert smallest_mean_error([(r["pipeline"], r["level"]) for r in runs[:3]], [r["error"] for r in runs[:3]]) == \
        pytest.approx(0.4)
    bench = {"questions": [{"reference_noise": 0.1}, {"reference_noise": 0.35}], "runs": runs}
    assert trusted_questions(bench) == [True, False]
    bench["questions"][1]["reference_noise"] = 0.29
    assert trusted_questions(bench) == [True, True]


def test_the_paper_budget_run_on_the_trained_realistic_model_is_in_the_doc():
    """The trained realistic-proportion model at the paper's budget (5000 // (2F+1) permutations): its table
    and load check in docs/performance.md are what its committed JSON regenerates, and the quiet and loaded
    runs beside it show what load does to the cost per evaluation."""
    from vqa_shap.measure.pipeline_report import format_load_check

    text = DOC.read_text()
    report = json.loads((ROOT / "benchmarks" / "bench_pipeline_demo_realistic.json").read_text())
    assert render_doc(text, report, "demo-realistic-paper-budget") == text
    bench = report["models"]["demo-realistic"]
    assert bench["trained"] is True and bench["info"]["n_features"] >= 120
    assert bench["settings"]["paper_levels"][-1] == 5000 // (2 * round(bench["info"]["n_features"]) + 1)
    assert summarise(bench["runs"], list(range(bench["n_questions"])), n_boot=bench["summary"]["bootstrap"]) == \
        bench["summary"]
    assert format_load_check(bench) in text
    # its references are committed (grown from there by a later run with --references benchmarks/references)
    from vqa_shap.measure.references import load_reference

    stored = [load_reference(path.stem, path.parent)
              for path in sorted((ROOT / "benchmarks" / "references").glob("demo-realistic_*.json"))]
    for q in bench["questions"]:
        match = [r for r in stored if r.own_error_all == pytest.approx(q["reference_noise"], rel=1e-5)]
        assert len(match) == 1 and 2 * match[0].budget // (2 * q["n_features"] + 1) == q["reference_permutations"]
    for name in ("quiet", "loaded"):
        side = json.loads((ROOT / "benchmarks" / f"bench_pipeline_demo_realistic_{name}.json").read_text())
        assert render_doc(text, side, f"demo-realistic-{name}") == text
    quiet = json.loads((ROOT / "benchmarks" / "bench_pipeline_demo_realistic_quiet.json").read_text())
    loads = quiet["models"]["demo-realistic"]["load"]
    assert max(loads["samples"] + [loads["start"][0]]) < 1.5    # measured on a quiet machine


@pytest.mark.parametrize("name, estimator", [("forest_msr", "forest_msr"), ("auto_pilot", "auto")])
def test_the_estimator_runs_on_the_trained_realistic_model_are_in_the_doc(name, estimator):
    """vqa-shap with ``--estimator forest_msr``, and with the default since its rough-game pilot, against
    the paper's way at its own budget, on the trained realistic-proportion model and its stored
    references: each table is what its committed JSON regenerates, and every question's reference is trusted."""
    from vqa_shap.measure.pipeline_report import trusted_questions

    text = DOC.read_text()
    report = json.loads((ROOT / "benchmarks" / f"bench_pipeline_demo_realistic_{name}.json").read_text())
    assert render_doc(text, report, f"demo-realistic-{name.replace('_', '-')}") == text
    bench = report["models"]["demo-realistic"]
    assert bench["trained"] is True and bench["settings"]["estimator"] == estimator
    assert bench["settings"]["paper_levels"][-1] == 5000 // (2 * round(bench["info"]["n_features"]) + 1)
    assert summarise(bench["runs"], list(range(bench["n_questions"])), n_boot=bench["summary"]["bootstrap"]) == \
        bench["summary"]
    assert all(trusted_questions(bench))
    assert f"{bench['summary']['speedup']:.1f}×" in (ROOT / "README.md").read_text(encoding="utf-8")
