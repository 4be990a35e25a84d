"""The masking benchmark: mask construction per setting (hand-made attribution), force-logit mapping,
summaries, and an end-to-end run through a tiny model loader."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap.analysis.masking.experiment import MaskBenchOptions, MaskBenchRow
from vqa_shap.analysis.masking.masks import (MaskSetting, eligible_features, feature_index_map, forced_order,
                                               keep_mask, keep_matrix, mask_settings, normalised_shapley,
                                               reorder_options)
from vqa_shap.analysis.masking.summary import paper_json, summarize
from vqa_shap.schema.records import Feature, Question

# A hand-made question: 2 frames, question words "What ?", option 0 "Red cup" (GT), option 1 "Blue".
FEATURES = (
    Feature("frame_0", "video", input=0, time=0.0),
    Feature("frame_1", "video", input=0, time=1.0),
    Feature("What", "question"),
    Feature("?", "question"),
    Feature("Red", "answer", option=0),
    Feature("cup", "answer", option=0),
    Feature("Blue", "answer", option=1),
)
ANSWER = 0
# column 0 (GT): max |φ| = 4 -> ψ0 = [0.5, -0.25, 0, 1, 0.25, -0.5, 0]
# column 1:      max |φ| = 6 -> ψ1 = [-0.5, 1/6, 0, 0, 0, 0, 1]
# all = (ψ0 + ψ1) / 2 = [0, -1/24, 0, 0.5, 0.125, -0.25, 0.5]
SHAPLEY = np.array([
    [2.0, -3.0],
    [-1.0, 1.0],
    [0.0, 0.0],
    [4.0, 0.0],
    [1.0, 0.0],
    [-2.0, 0.0],
    [0.0, 6.0],
])


def keep(setting, signal=None, mode=None, answer_masking="all", threshold=0.0):
    psi = normalised_shapley(SHAPLEY)
    out = keep_mask(MaskSetting(setting, signal, mode), FEATURES, psi, ANSWER,
                    threshold=threshold, answer_masking=answer_masking)
    return out.astype(int).tolist()


def test_normalisation_per_column():
    psi = normalised_shapley(SHAPLEY)
    assert psi[:, 0].tolist() == [0.5, -0.25, 0, 1, 0.25, -0.5, 0]
    assert psi[:, 1] == pytest.approx([-0.5, 1 / 6, 0, 0, 0, 0, 1])


def test_settings_order_and_count():
    settings = mask_settings()
    assert len(settings) == 29
    assert settings[0].key == "nothing"
    assert [s.key for s in settings[1:5]] == ["everything/joint", "everything/video", "everything/question",
                                             "everything/answer"]
    assert settings[5].key == "positive/ground_truth/joint" and settings[-1].key == "negative/all/answer"


def test_nothing_and_everything():
    assert keep("nothing") == [1] * 7
    assert keep("everything", mode="joint") == [0] * 7  # joint = every feature eligible
    assert keep("everything", mode="video") == [0, 0, 1, 1, 1, 1, 1]
    assert keep("everything", mode="question") == [1, 1, 0, 0, 1, 1, 1]
    assert keep("everything", mode="answer") == [1, 1, 1, 1, 0, 0, 0]


def test_negative_ground_truth_masks_negatives_and_exact_zeros():
    # keep ψ_GT > 0: frame_0 (0.5), "?" (1), "Red" (0.25); "What" and "Blue" are exact zeros -> masked
    assert keep("negative", "ground_truth", "joint") == [1, 0, 0, 1, 1, 0, 0]
    assert keep("negative", "ground_truth", "video") == [1, 0, 1, 1, 1, 1, 1]
    assert keep("negative", "ground_truth", "question") == [1, 1, 0, 1, 1, 1, 1]
    assert keep("negative", "ground_truth", "answer") == [1, 1, 1, 1, 1, 0, 0]


def test_positive_ground_truth_masks_positives_and_exact_zeros():
    # keep ψ_GT < 0: frame_1, "cup"
    assert keep("positive", "ground_truth", "joint") == [0, 1, 0, 0, 0, 1, 0]
    assert keep("positive", "ground_truth", "video") == [0, 1, 1, 1, 1, 1, 1]
    assert keep("positive", "ground_truth", "question") == [1, 1, 0, 0, 1, 1, 1]
    assert keep("positive", "ground_truth", "answer") == [1, 1, 1, 1, 0, 1, 0]


def test_false_signal():
    # ψ1 = [-0.5, 1/6, 0, 0, 0, 0, 1]
    assert keep("negative", "false", "joint") == [0, 1, 0, 0, 0, 0, 1]
    assert keep("positive", "false", "joint") == [1, 0, 0, 0, 0, 0, 0]
    assert keep("positive", "false", "video") == [1, 0, 1, 1, 1, 1, 1]
    assert keep("negative", "false", "answer") == [1, 1, 1, 1, 0, 0, 1]


def test_all_signal():
    # all = [0, -1/24, 0, 0.5, 0.125, -0.25, 0.5]
    assert keep("negative", "all", "joint") == [0, 0, 0, 1, 1, 0, 1]
    assert keep("positive", "all", "joint") == [0, 1, 0, 0, 0, 1, 0]
    assert keep("negative", "all", "question") == [1, 1, 0, 1, 1, 1, 1]
    assert keep("positive", "all", "video") == [0, 1, 1, 1, 1, 1, 1]


def test_gt_answer_masking_only_touches_the_gt_option():
    assert keep("everything", mode="answer", answer_masking="gt") == [1, 1, 1, 1, 0, 0, 1]
    assert keep("everything", mode="joint", answer_masking="gt") == [0, 0, 0, 0, 0, 0, 1]
    assert keep("negative", "ground_truth", "answer", answer_masking="gt") == [1, 1, 1, 1, 1, 0, 1]
    assert keep("positive", "ground_truth", "answer", answer_masking="gt") == [1, 1, 1, 1, 0, 1, 1]
    # video/question modes ignore it
    assert keep("negative", "ground_truth", "video", answer_masking="gt") == [1, 0, 1, 1, 1, 1, 1]


def test_threshold():
    # keep ψ_GT > 0.3: frame_0 (0.5), "?" (1)
    assert keep("negative", "ground_truth", "joint", threshold=0.3) == [1, 0, 0, 1, 0, 0, 0]


def test_eligible_modes():
    assert eligible_features(FEATURES, "joint", 0).all()
    assert eligible_features(FEATURES, "answer", 1, "gt").astype(int).tolist() == [0, 0, 0, 0, 0, 0, 1]


def test_keep_matrix_rows_follow_settings():
    settings = mask_settings()
    m = keep_matrix(settings, FEATURES, SHAPLEY, ANSWER)
    assert m.shape == (29, 7) and m.dtype == bool
    for s, row in zip(settings, m):
        assert row.astype(int).tolist() == keep(s.setting, s.signal, s.mode)


def test_zero_column_does_not_crash():
    m = keep_matrix(mask_settings(), FEATURES, np.zeros((7, 2)), ANSWER)
    # every signal is 0: negative masks every eligible feature, positive too
    assert not m[mask_settings().index(MaskSetting("negative", "all", "joint"))].any()


# --------------------------------------------------------------------------------------------
# force_logit


def test_forced_order_moves_gt():
    assert forced_order(4, 2, "first") == (2, 0, 1, 3)
    assert forced_order(4, 2, "last") == (0, 1, 3, 2)
    assert forced_order(3, 0, "first") == (0, 1, 2)


def test_reorder_options_and_feature_map():
    q = Question(qid="q", benchmark="egoschema", task="t", question="What ?", options=("Red cup", "Blue"), answer=0)
    order = forced_order(2, 0, "last")
    moved = reorder_options(q, order)
    assert moved.options == ("Blue", "Red cup") and moved.answer == 1
    assert [o.index for o in moved.option_origin] == [1, 0]
    idx = feature_index_map(FEATURES, order)
    assert idx.tolist() == [0, 1, 2, 3, 6, 4, 5]
    assert [FEATURES[i].name for i in idx] == ["frame_0", "frame_1", "What", "?", "Blue", "Red", "cup"]
    # a mask computed in the original order follows its words
    k = np.array(keep("negative", "ground_truth", "joint"), dtype=bool)
    assert k[idx].astype(int).tolist() == [1, 0, 0, 1, 0, 1, 0]


def test_reorder_with_the_protocol_gives_the_mapped_features():
    from vqa_shap.protocol import get_protocol

    proto = get_protocol("pollard2025")
    q = Question(qid="q", benchmark="egoschema", task="t", question="what is it",
                 options=("a red cup", "blue", "green tea pot"), answer=1)
    feats = proto.features(q, None)
    order = forced_order(3, 1, "first")
    moved = proto.features(reorder_options(q, order), None)
    idx = feature_index_map(feats, order)
    assert [(f.name, f.modality) for f in moved] == [(feats[i].name, feats[i].modality) for i in idx]


# --------------------------------------------------------------------------------------------
# summaries


def _rows():
    def row(qid, setting, signal, mode, pred, label, error=None):
        return MaskBenchRow(qid=qid, benchmark="b", task="t", variant="original", model="m", setting=setting,
                            signal=signal, mode=mode, prediction=None if error else pred, label=label,
                            correct=None if error else pred == label, n_masked=None if error else 0, error=error)

    return [
        row("q1", "nothing", None, None, 0, 0), row("q1", "everything", None, "joint", 1, 0),
        row("q2", "nothing", None, None, 1, 0), row("q2", "everything", None, "joint", 0, 0),
        row("q3", "nothing", None, None, 1, 1), row("q3", "everything", None, "joint", 1, 1),
        row("q4", "nothing", None, None, 0, 0, error="boom"), row("q4", "everything", None, "joint", 0, 0, error="boom"),
    ]


def test_summarize_accuracy_difference_and_errors():
    nothing, everything = summarize(_rows())
    assert nothing.key == "nothing" and nothing.accuracy == pytest.approx(2 / 3)
    assert nothing.n_questions == 3 and nothing.n_errors == 1
    assert everything.accuracy == pytest.approx(2 / 3) and everything.diff == pytest.approx(0.0)


def test_paper_json_layout():
    js = paper_json(_rows())
    assert js["nothing"]["preds"] == [0, 1, 1, None]
    assert js["everything"]["joint"]["preds"] == [1, 0, 1, None]
    assert js["everything"]["joint"]["accuracy"] == pytest.approx(2 / 3)


def test_options_validation_and_suffix():
    assert MaskBenchOptions(answer_masking="gt").suffix == "_gt"
    assert MaskBenchOptions(force_logit="last").suffix == "_last"
    assert MaskBenchOptions().suffix == ""
    with pytest.raises(ValueError, match="force_logit"):
        MaskBenchOptions(force_logit="middle")


# --------------------------------------------------------------------------------------------
# the paper's published tables: FrozenBiLM's non-GT option words have exactly 0 in the GT column,
# so negative/ground_truth masks every distractor word (as the paper does: exact zeros are masked too)


def test_negative_gt_masks_all_distractor_words_on_published_frozenbilm_tables(pollard_dir):
    from vqa_shap.builders import get_builder
    from vqa_shap.analysis.paper_csv import attribution_from_csv
    from vqa_shap.protocol import get_protocol

    proto = get_protocol("pollard2025")
    questions = {q.qid: q for q in get_builder("pollard2025").build(pollard_dir).configs["egoschema"]}
    csvs = sorted((pollard_dir / "shapley" / "frozenbilm" / "egoschema").glob("*_5000_joint.csv"))
    assert csvs
    n_zero = n_distractor = n_masked_distractor = 0
    for path in csvs:
        qid = path.name.split("_")[0]
        attr = attribution_from_csv(path, questions[qid], proto, "frozenbilm")
        feats = attr.features
        setting = MaskSetting("negative", "ground_truth", "answer")
        k = keep_mask(setting, feats, normalised_shapley(attr.shapley), attr.answer)
        answer_words = np.array([f.modality == "answer" for f in feats])
        distractor = answer_words & np.array([f.option != attr.answer for f in feats])
        zero = attr.shapley[:, attr.answer] == 0
        # answer words are kept exactly when their GT value is > 0; exact zeros are masked
        assert (k[answer_words] == (attr.shapley[answer_words, attr.answer] > 0)).all(), qid
        assert k[~answer_words].all(), qid  # frames and question words untouched in answer mode
        n_zero += int((zero & distractor).sum())
        n_distractor += int(distractor.sum())
        n_masked_distractor += int((~k & distractor).sum())
    # almost every distractor word is an exact zero in the GT column (a few carry ~1e-8 noise), so
    # negative/ground_truth masks (nearly) all of them - why FrozenBiLM scores ~1.0 there
    assert n_zero > 0.9 * n_distractor and n_masked_distractor > 0.95 * n_distractor


# --------------------------------------------------------------------------------------------
# force_logit through evaluate_question: the masked words follow their option


class RecordingLoader:
    """Stands in for a model loader: records what it is given, scores every coalition 0 (ties -> 0)."""

    family = "llava_onevision"
    temporal_unit = 1

    def __init__(self):
        self.prepared = []
        self.coalitions = []

    def prepare(self, question, frames, plan, protocol):
        self.prepared.append((question, plan))
        return question

    def score(self, prepared, coalitions):
        self.coalitions.append(np.asarray(coalitions).copy())
        return np.zeros((len(coalitions), prepared.n_options), dtype=np.float32)


@pytest.fixture(scope="module")
def tiny_question(tmp_path_factory):
    from vqa_shap.schema.records import VisualInput
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("maskbench_q")
    q = Question(qid="q1", benchmark="egoschema", task="t", question="What did the person hold ?",
                 options=("A red cup", "The blue pan", "Nothing at all", "Two green bottles"), answer=2,
                 inputs=(VisualInput("video", "q1.mp4"),))
    synthesize_inputs([q], root, n_frames=8, size=(32, 32), seed=0)
    return q, root


def _hand_attribution(q, root, seed=0):
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.records import Attribution

    proto = get_protocol("pollard2025")
    plan = proto.plan_frames(q, root, 4, loader_family="llava_onevision")
    feats = proto.features(q, plan)
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(len(feats), q.n_options))
    phi[rng.random(len(feats)) < 0.2] = 0.0  # exact zeros
    return Attribution(qid=q.qid, benchmark=q.benchmark, task=q.task, variant=q.variant, model="fake",
                       loader="llava_onevision", protocol="pollard2025", features=feats, shapley=phi,
                       answer=q.answer), plan


@pytest.mark.parametrize("force", ["first", "last"])
def test_force_logit_masks_follow_their_option(tiny_question, force):
    from vqa_shap.analysis.masking.experiment import evaluate_question
    from vqa_shap.protocol import get_protocol

    q, root = tiny_question
    proto = get_protocol("pollard2025")
    attr, plan = _hand_attribution(q, root)
    loader = RecordingLoader()
    rows = evaluate_question(attr, q, loader, proto, root, 4, MaskBenchOptions(force_logit=force))
    (shown, _), = loader.prepared
    (coalitions,) = loader.coalitions  # one score batch for all settings
    assert coalitions.shape == (29, len(attr.features))
    expected_label = 0 if force == "first" else q.n_options - 1
    assert shown.options[expected_label] == q.options[q.answer]
    assert {r.label for r in rows} == {expected_label}
    original = keep_matrix(mask_settings(), attr.features, attr.shapley, q.answer)
    order = forced_order(q.n_options, q.answer, force)
    n_video = sum(f.modality == "video" for f in attr.features)
    for k_orig, k_shown in zip(original, coalitions):
        assert (k_orig[:n_video] == k_shown[:n_video]).all()
        masked_orig = proto.render(q, plan, k_orig[n_video:])
        masked_shown = proto.render(shown, plan, k_shown[n_video:])
        assert masked_shown.question == masked_orig.question
        assert masked_shown.options == tuple(masked_orig.options[i] for i in order)
    # the scores tie (all 0) -> prediction 0 -> correct only when the GT was forced first
    assert all(r.correct == (force == "first") for r in rows)
    assert [r.n_masked for r in rows] == [int((~k).sum()) for k in original]


def test_mismatched_frames_are_a_clear_error(tiny_question):
    from vqa_shap.analysis.masking.masks import MaskBenchError
    from vqa_shap.analysis.masking.experiment import evaluate_question
    from vqa_shap.protocol import get_protocol

    q, root = tiny_question
    attr, _ = _hand_attribution(q, root)
    with pytest.raises(MaskBenchError, match="question .q1.: the protocol gives 24 features but the attribution has 22"):
        evaluate_question(attr, q, RecordingLoader(), get_protocol("pollard2025"), root, 6)


# --------------------------------------------------------------------------------------------
# end to end: fixture questions + synthesised videos -> explain (tiny LLaVA-OneVision) -> mask-bench

E2E_CONFIG = "mixed"
E2E_FRAMES = 4
MISSING = "missing-video-question"


@pytest.fixture(scope="module")
def explained(tmp_path_factory, pollard_dir):
    """An attributions folder computed by ``explain`` with the tiny random LLaVA-OneVision."""
    import torch

    import dataclasses

    from vqa_shap.builders import get_builder
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.schema.records import VisualInput
    from vqa_shap.synthetic_inputs import synthesize_inputs

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("maskbench_e2e")
    configs = get_builder("pollard2025").build(pollard_dir).configs
    hd_epic = {q.qid: q for q in configs["hd-epic"]}
    # short questions (few players) keep the run small: HD-EPIC video window + image, MVBench, LVBench
    questions = [hd_epic["object_motion_object_movement_counting_94"], configs["mvbench"][0], configs["lvbench"][0],
                 dataclasses.replace(configs["mvbench"][1], qid=MISSING, option_origin=(),
                                     inputs=(VisualInput(kind="video", path="not-synthesised/missing.mp4"),))]
    write_questions(root / "questions", E2E_CONFIG, questions)
    synthesize_inputs(questions[:-1], root / "videos", n_frames=16, size=(64, 64), seed=0)
    result = explain_questions(ExplainRun(root / "questions", E2E_CONFIG, model="tiny-random/llava_onevision",
                                          video_root=root / "videos", out=root / "attributions", frames=E2E_FRAMES,
                                          budget=128, seed=0, batch_size=16, progress=False))
    yield {"root": root, "questions": questions, "config": result.config, "attributions": root / "attributions",
           "videos": root / "videos"}
    torch.set_num_threads(threads)


def _mask_bench_cli(ws, out, *extra):
    from vqa_shap.cli import main

    return main(["mask-bench", str(ws["attributions"]), "--config", ws["config"], "--questions",
                 str(ws["root"] / "questions"), "--video-root", str(ws["videos"]), "--out", str(out),
                 "--no-progress", *extra])


@pytest.mark.slow
def test_mask_bench_end_to_end_on_a_tiny_model(explained, capsys):
    import json

    import datasets

    from vqa_shap.hub.folder import load_attributions

    out = explained["root"] / "maskbench"
    assert _mask_bench_cli(explained, out, "--json", str(out / "bench.json")) == 0
    printed = capsys.readouterr().out
    assert "negative/ground_truth" in printed and "Δ accuracy (pt)" in printed
    ds = datasets.load_dataset(str(out), name=explained["config"], split="test", download_mode="force_redownload")
    rows = [MaskBenchRow.from_row(r) for r in ds]
    qids = [q.qid for q in explained["questions"]]
    assert len(rows) == 29 * len(qids)
    assert [r.qid for r in rows[::29]] == qids
    attrs = {a.qid: a for a in load_attributions(explained["attributions"], explained["config"])}
    for qid in qids:
        mine = {r.key: r for r in rows if r.qid == qid}
        assert list(mine) == [s.key for s in mask_settings()]
        attr = attrs[qid]
        if qid == MISSING:  # the attribution is an error row: every setting records it, none is dropped
            assert all(r.error and "missing.mp4" in r.error and r.prediction is None for r in mine.values())
            continue
        assert all(r.error is None for r in mine.values()), qid
        n_video = int(attr.modality_mask("video").sum())
        # the unmasked and the fully masked inputs reproduce explain's own scores of the same model
        assert mine["nothing"].prediction == attr.prediction == int(np.argmax(attr.value_full))
        assert mine["everything/joint"].prediction == int(np.argmax(attr.value_empty))
        assert mine["nothing"].n_masked == 0 and mine["everything/joint"].n_masked == attr.n_features
        assert mine["everything/video"].n_masked == n_video
        expected = keep_matrix(mask_settings(), attr.features, attr.shapley, attr.answer)
        assert [mine[s.key].n_masked for s in mask_settings()] == [int((~k).sum()) for k in expected]
        assert all(r.label == attr.answer and r.correct == (r.prediction == r.label) for r in mine.values())
    report = json.loads((out / "bench.json").read_text())
    assert report["n_failed"] == 1 and report["errors"][0].startswith(MISSING)
    nothing = next(s for s in report["settings"] if s["setting"] == "nothing")
    assert nothing["n_questions"] == 3 and nothing["n_errors"] == 1
    assert nothing["accuracy"] == pytest.approx(np.mean([attrs[q].prediction == attrs[q].answer for q in qids[:3]]))
    assert report["paper"]["negative"]["ground_truth"]["joint"]["preds"][:3] == [
        r.prediction for r in rows if r.key == "negative/ground_truth/joint"][:3]


@pytest.mark.slow
def test_mask_bench_force_last_and_gt_masking(explained):
    import datasets

    from vqa_shap.cli import main
    from vqa_shap.protocol import get_protocol

    out = explained["root"] / "maskbench_variants"
    assert _mask_bench_cli(explained, out, "--force-logit", "last") == 0
    assert _mask_bench_cli(explained, out, "--answer-masking", "gt") == 0
    last = [MaskBenchRow.from_row(r) for r in datasets.load_dataset(str(out), name=explained["config"] + "_last",
                                                                    split="test", download_mode="force_redownload")]
    gt = [MaskBenchRow.from_row(r) for r in datasets.load_dataset(str(out), name=explained["config"] + "_gt",
                                                                  split="test", download_mode="force_redownload")]
    questions = {q.qid: q for q in explained["questions"]}
    for r in last:
        assert r.force_logit == "last" and r.label == questions[r.qid].n_options - 1
    # with every word masked the reordered prompt is the unforced all-masked prompt: same scores
    from vqa_shap.hub.folder import load_attributions

    for attr in load_attributions(explained["attributions"], explained["config"]):
        if attr.error is None:
            row = next(r for r in last if r.qid == attr.qid and r.key == "everything/joint")
            assert row.prediction == int(np.argmax(attr.value_empty))
    for qid, q in questions.items():
        if qid == MISSING:
            continue
        by = {r.key: r for r in gt if r.qid == qid}
        # gt answer masking: "everything/answer" masks only the ground-truth option's words
        n_gt_words = sum(f.option == q.answer for f in get_protocol("pollard2025").text_features(q))
        assert by["everything/answer"].n_masked == n_gt_words
    # a second run into the same folder needs --overwrite
    assert main(["mask-bench", str(explained["attributions"]), "--config", explained["config"], "--questions",
                 str(explained["root"] / "questions"), "--video-root", str(explained["videos"]), "--out", str(out),
                 "--force-logit", "last", "--no-progress"]) == 2


def test_run_resumes_from_the_work_dir_and_records_failures(tiny_question, tmp_path):
    from vqa_shap.analysis.masking.masks import MaskBenchError
    from vqa_shap.analysis.masking.experiment import run_mask_bench
    from vqa_shap.protocol import get_protocol

    q, root = tiny_question
    attr, _ = _hand_attribution(q, root)
    proto = get_protocol("pollard2025")
    import dataclasses

    orphan = dataclasses.replace(attr, qid="not-a-question")
    first = RecordingLoader()
    rows = run_mask_bench([attr, orphan], {q.qid: q}, first, proto, root, n_frames=4, work_dir=tmp_path / "w",
                          progress=False)
    assert len(first.coalitions) == 1 and len(rows) == 58
    assert all("not in the questions dataset" in r.error for r in rows[29:])
    again = RecordingLoader()
    assert run_mask_bench([attr, orphan], {q.qid: q}, again, proto, root, n_frames=4, work_dir=tmp_path / "w",
                          progress=False) == rows
    assert again.coalitions == []  # nothing recomputed
    with pytest.raises(MaskBenchError, match="other settings \\(force_logit\\)"):
        run_mask_bench([attr], {q.qid: q}, again, proto, root, n_frames=4, work_dir=tmp_path / "w",
                       options=MaskBenchOptions(force_logit="first"), progress=False)


def test_format_matrix_is_the_papers_layout():
    from vqa_shap.analysis.masking.summary import format_matrix

    text = format_matrix(summarize(_rows()))
    lines = text.splitlines()
    assert lines[0] == "nothing: accuracy 0.667 over 3 questions"
    assert lines[1].split()[-4:] == ["joint", "video", "question", "answer"]
    assert lines[2].split() == ["everything", "+0.0"]


def test_aks_is_refused_and_shot_players_are_checked_against_the_redetected_shots(tiny_question):
    from dataclasses import replace

    from vqa_shap.analysis.masking.masks import MaskBenchError
    from vqa_shap.analysis.masking.players import plan_for_attribution
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.records import Feature

    q, root = tiny_question
    attr, _ = _hand_attribution(q, root)
    proto = get_protocol("pollard2025")
    with pytest.raises(MaskBenchError, match="aks"):
        plan_for_attribution(proto, q, attr, root, 4, loader_family="llava_onevision", sampler="aks")
    layout = plan_for_attribution(proto, q, attr, root, 4, loader_family="llava_onevision")  # the frame players fit
    assert layout.players == layout.features == attr.features and layout.groups is None
    # a shot name this video's shots do not give: the message names the question and the first differing player
    shots = replace(attr, features=(Feature("shot_0@0-99s", "video", input=0, time=0.0),) + attr.features[4:],
                    shapley=attr.shapley[3:])
    with pytest.raises(MaskBenchError, match=r"question 'q1': feature 0 differs: protocol 'shot_0@0-[\d.]+s' .* "
                                             r"vs attribution 'shot_0@0-99s'.*the video changed"):
        plan_for_attribution(proto, q, shots, root, 4, loader_family="llava_onevision", shot_detector="diff")
