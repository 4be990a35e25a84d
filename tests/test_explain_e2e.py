"""End to end: fixture questions + synthesised videos -> explain with tiny random models -> load_dataset.

Covers every model family, error rows, resume after SIGKILL, and sharding + merge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.schema.records import ATTRIBUTION_COLUMNS, Question, VisualInput

FAMILIES = ("llava_onevision", "qwen2_5_vl", "video_llama3")
CONFIG = "mixed"  # a question of every benchmark, an MVBench frame folder, two that must fail
SMALL = "small"  # its MVBench and LVBench questions (few players: cheap runs for sharding)
SMALL_BUDGET = 40
FRAMES = 4
BUDGET = 160  # >= 2F+1 for the longest picked question (F = 4 frames + 72 words)
MISSING_QID = "missing-video-question"
CROWDED_QID = "too-many-options"  # 26 options: the tiny tokenizers letter only A-Y


@pytest.fixture(scope="module", autouse=True)
def _few_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threading costs more than it gains, above all on a busy CPU
    yield
    torch.set_num_threads(before)


def _pick_questions(pollard_dir: Path) -> list[Question]:
    """Real questions of every benchmark, an MVBench frame-folder question, one without video and
    one with more options than the tiny models can letter."""
    from vqa_shap.builders import get_builder

    configs = get_builder("pollard2025").build(pollard_dir).configs
    # original configs only: the variants reuse the qids
    by_qid = {q.qid: q for bench in ("egoschema", "hd-epic", "mvbench", "lvbench") for q in configs[bench]}
    # the shortest question of each benchmark (fewest players, so the default estimator's minimum
    # budget 2F+1 stays small) and HD-EPIC's video window + image question
    picked = [by_qid[qid] for qid in (
        "752578b3-efa3-4312-96d7-0bed2ea7576a",  # egoschema
        "object_motion_object_movement_counting_94",  # hd-epic: a video window + an image
        "character_order_161",  # mvbench
        "entity_recognition_reasoning_3420",  # lvbench
    )]
    mvbench = by_qid["moving_attribute_109"]
    # The fixture's MVBench sample has no episodic_reasoning (frame folder) record: make one from a
    # real record, with the task's folder layout (tvqa frames at 3 fps, bounded).
    picked.append(replace(
        mvbench, qid="episodic_reasoning_0", task="episodic_reasoning",
        inputs=(VisualInput(kind="frames", path="tvqa/frames_fps3_hq/clip_0", start=1.0, end=4.0, fps=3.0),),
        option_origin=(),
    ))
    picked.append(replace(by_qid["action_count_172"], qid=MISSING_QID, option_origin=(),
                          inputs=(VisualInput(kind="video", path="not-synthesised/missing.mp4"),)))
    lvbench = by_qid["entity_recognition_reasoning_3420"]
    picked.append(replace(lvbench, qid=CROWDED_QID, option_origin=(),
                          options=tuple(f"option {i}" for i in range(26))))
    return picked


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, pollard_dir):
    """Questions folder + synthesised video root (the missing question's video is never written)."""
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("explain_e2e")
    questions = _pick_questions(pollard_dir)
    write_questions(root / "questions", CONFIG, questions)
    small = [q for q in questions if q.benchmark in ("mvbench", "lvbench") and q.qid != CROWDED_QID]
    write_questions(root / "questions", SMALL, small)
    synthesize_inputs([q for q in questions if q.qid != MISSING_QID], root / "videos",
                      n_frames=16, size=(64, 64), seed=0)
    return {"root": root, "questions": questions, "small": small, "folder": root / "questions",
            "videos": root / "videos"}


def _explain(workspace, out, family, config=CONFIG, budget=BUDGET, **kw):
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions

    return explain_questions(ExplainRun(
        workspace["folder"], config, model=f"tiny-random/{family}", video_root=workspace["videos"], out=out,
        frames=FRAMES, budget=budget, seed=0, batch_size=16, progress=False, **kw,
    ))


def _load(out, config):
    from vqa_shap.explain.explain_run import load_fresh

    return load_fresh(out, config)


def _check_rows(ds, questions, family):
    """Every question exactly once in order; efficiency on every non-error row; error rows for the
    question without video and the one with too many options."""
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.arrow import attribution_features

    proto = get_protocol("pollard2025")
    assert ds.features == attribution_features()
    assert ds.column_names == list(ATTRIBUTION_COLUMNS)
    assert ds["qid"] == [q.qid for q in questions]
    for q, row in zip(questions, ds):
        assert (row["model"], row["loader"], row["protocol"]) == (f"tiny-random/{family}", family, "pollard2025")
        assert (row["benchmark"], row["task"], row["variant"], row["answer"]) == (q.benchmark, q.task, q.variant, q.answer)
        if q.qid in (MISSING_QID, CROWDED_QID):
            expected = "missing.mp4" if q.qid == MISSING_QID else "26 options"
            assert row["error"] and expected in row["error"], row["error"]
            assert row["shapley"] == [] and row["value_full"] is None and row["prediction"] is None
            assert row["evaluations"] == 0
            continue
        assert row["error"] is None, (q.qid, row["error"])
        phi = np.asarray(row["shapley"], dtype=np.float64)
        full = np.asarray(row["value_full"], dtype=np.float64)
        empty = np.asarray(row["value_empty"], dtype=np.float64)
        n_text = len(proto.text_features(q))
        assert phi.shape == (len(row["features"]), q.n_options)
        assert [f["name"] for f in row["features"][-n_text:]] == [f.name for f in proto.text_features(q)]
        n_video = len(row["features"]) - n_text
        assert n_video >= 1 and all(f["modality"] == "video" for f in row["features"][:n_video])
        # every visual input contributes players (HD-EPIC: the video window and the image)
        assert {f["input"] for f in row["features"][:n_video]} == set(range(len(q.inputs)))
        # efficiency: sum of phi per option equals v(all) - v(empty), for every option
        np.testing.assert_allclose(phi.sum(axis=0), full - empty, atol=1e-4 * max(1.0, np.abs(full - empty).max()))
        assert row["prediction"] == int(np.argmax(full))
        assert 0 < row["evaluations"] <= row["budget"] + 2
        assert row["runtime_s"] > 0 and row["seed"] == 0


@pytest.fixture(scope="module")
def llava_run(workspace):
    out = workspace["root"] / "out_single"
    result = _explain(workspace, out, "llava_onevision")
    return out, result


@pytest.mark.parametrize("family", FAMILIES)
def test_explain_each_family_end_to_end(family, workspace, tmp_path, request):
    if family == "llava_onevision":
        out, result = request.getfixturevalue("llava_run")
    else:
        out = tmp_path / "out"
        result = _explain(workspace, out, family)
    assert result.written and result.n_computed == len(workspace["questions"]) and result.n_errors == 2
    config = f"tiny-random-{family}__{CONFIG}"
    assert result.config == config
    ds = _load(out, config)
    _check_rows(ds, workspace["questions"], family)
    from huggingface_hub import DatasetCard

    from vqa_shap.estimators import get_estimator

    card = DatasetCard.load(out / "README.md")
    assert config in card.text and f"tiny-random/{family}" in card.text
    settings = card.data.to_dict()["vqa_shap"]["configs"][config]
    assert {k: settings[k] for k in ("model", "loader", "protocol", "estimator", "budget", "seed")} == {
        "model": f"tiny-random/{family}", "loader": family, "protocol": "pollard2025",
        "estimator": get_estimator("default").name, "budget": BUDGET, "seed": 0}
    # each explained row names the member the default ran (the settings and error rows name the default)
    from vqa_shap.estimators.auto import LARGE_CHOICE, SMALL_CHOICE, SMALL_CHOICE_LOW_BUDGET
    from vqa_shap.estimators.spec import format_spec

    default = get_estimator("default").name
    ran = {e for e, error in zip(ds["estimator"], ds["error"]) if not error}
    assert ran and ran <= {f"{default}/{format_spec(*choice)}"
                           for choice in (SMALL_CHOICE, SMALL_CHOICE_LOW_BUDGET, LARGE_CHOICE)}
    assert {e for e, error in zip(ds["estimator"], ds["error"]) if error} == {default}
    assert not list(out.glob("**/*.tmp-*"))


def test_finished_run_resumes_without_loading_the_model(workspace, llava_run, monkeypatch):
    out, first = llava_run
    from vqa_shap import loaders

    def no_model(*a, **k):  # a finished shard must not even load the model
        raise AssertionError("model loaded although every question is finished")

    loader_cls, _ = loaders.resolve_model("tiny-random/llava_onevision")
    monkeypatch.setattr(loader_cls, "load", classmethod(no_model))
    again = _explain(workspace, out, "llava_onevision", overwrite=True)
    assert (again.n_resumed, again.n_computed, again.evaluations) == (len(workspace["questions"]), 0, 0)
    before = _load(out, first.config)
    assert again.dataset["shapley"] == before["shapley"]


def test_existing_config_needs_overwrite(workspace, llava_run):
    from vqa_shap.explain.workdir import ExplainError

    out, _ = llava_run
    with pytest.raises(ExplainError, match="already has config"):
        _explain(workspace, out, "llava_onevision")


def test_retry_errors_recomputes_only_error_rows(workspace, llava_run, tmp_path):
    import shutil

    from vqa_shap.explain.workdir import WorkDir

    out, first = llava_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    work = WorkDir(copy / first.work_dir.relative_to(out))
    error_file = work.result_path(MISSING_QID)
    ok_file = work.result_path(workspace["questions"][0].qid)
    ok_before = ok_file.stat().st_mtime_ns
    again = _explain(workspace, copy, "llava_onevision", overwrite=True, retry_errors=True)
    assert (again.n_resumed, again.n_computed, again.n_errors) == (len(workspace["questions"]) - 2, 2, 2)
    assert ok_file.stat().st_mtime_ns == ok_before and error_file.stat().st_mtime_ns > ok_before


def test_sharded_runs_and_merge_equal_single_run(workspace, tmp_path, monkeypatch):
    from vqa_shap.cli import main

    single = _explain(workspace, tmp_path / "single", "llava_onevision", config=SMALL, budget=SMALL_BUDGET)
    out = tmp_path / "sharded"
    parts = []
    for rank in (0, 1):  # two runs as torchrun would start them
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        result = _explain(workspace, out, "llava_onevision", config=SMALL, budget=SMALL_BUDGET)
        assert not result.written and result.shard.world_size == 2
        parts.append(list(result.dataset["qid"]))
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    assert main(["merge", str(out)]) == 0
    merged = _load(out, single.config)
    reference = _load(tmp_path / "single", single.config)
    assert merged["qid"] == reference["qid"] == parts[0] + parts[1] == [q.qid for q in workspace["small"]]
    _check_rows(merged, workspace["small"], "llava_onevision")
    # the same seed for every question: the shards' numbers equal the single run's
    for a, b in zip(merged, reference):
        assert a["error"] == b["error"]
        np.testing.assert_allclose(np.asarray(a["shapley"]), np.asarray(b["shapley"]), atol=1e-6)


def test_other_settings_are_refused_and_restart_recomputes(workspace, tmp_path):
    from vqa_shap.explain.workdir import ExplainError

    out = tmp_path / "out"
    first = _explain(workspace, out, "llava_onevision", config=SMALL, budget=SMALL_BUDGET)
    assert first.n_computed == len(workspace["small"])
    with pytest.raises(ExplainError, match=rf"budget: {SMALL_BUDGET} recorded, 64 now.*--restart"):
        _explain(workspace, out, "llava_onevision", config=SMALL, budget=64, overwrite=True)
    with pytest.raises(ExplainError, match="would discard the other shards' work"):
        _explain(workspace, out, "llava_onevision", config=SMALL, budget=64, restart=True, rank=0, world_size=2)
    again = _explain(workspace, out, "llava_onevision", config=SMALL, budget=64, overwrite=True, restart=True)
    assert (again.n_resumed, again.n_computed) == (0, len(workspace["small"]))
    assert set(_load(out, again.config)["budget"]) == {64}


def test_bad_video_root_or_output_folder_fail_before_any_work(workspace, tmp_path, capsys):
    from vqa_shap.cli import main

    args = ["explain", str(workspace["folder"]), "--config", SMALL, "--model", "tiny-random/llava_onevision"]
    assert main([*args, "--video-root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2  # parse time
    assert "argument --video-root: folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
    # the questions folder itself is not an attributions folder
    assert main([*args, "--video-root", str(workspace["videos"]), "--out", str(workspace["folder"])]) == 2
    assert "holds a 'questions' dataset" in capsys.readouterr().err
    assert not (workspace["folder"] / ".work").exists()


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_nothing(workspace, tmp_path):
    from vqa_shap.explain.workdir import attributions_config, work_dir_for

    out = tmp_path / "killed"
    config = attributions_config("tiny-random/llava_onevision", CONFIG)
    work = work_dir_for(out, config)
    cmd = [sys.executable, "-m", "vqa_shap.cli", "explain", str(workspace["folder"]), "--config", CONFIG,
           "--model", "tiny-random/llava_onevision", "--video-root", str(workspace["videos"]), "--out", str(out),
           "--frames", str(FRAMES), "--budget", "400", "--batch-size", "8", "--threads", "1", "--no-progress"]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not work.path.is_dir() or not work.results():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no work file appeared"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.path.glob("*.json") if p.name != "settings.json"}
    n = len(workspace["questions"])
    assert 1 <= len(done) < n, f"{len(done)} of {n} finished before the kill: the test needs a slower run"
    assert not (out / config).exists()  # the config is only assembled at the end

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done)} resumed" in rerun.stdout and f"{n - len(done)} explained now" in rerun.stdout
    for path, (mtime, content) in done.items():  # finished work was not recomputed
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == content
    ds = _load(out, config)
    assert ds["qid"] == [q.qid for q in workspace["questions"]]  # each exactly once, in order
    assert sum(1 for e in ds["error"] if e) == 2


def test_too_small_budget_is_raised_to_the_estimator_minimum_unless_strict(workspace, tmp_path):
    """Budget 8 cannot pay for one permutation (2F+1 rows): by default the question runs at that
    minimum and records it; with ``strict_budget`` it becomes an error row naming the budget."""
    lenient = _load(tmp_path / "lenient", _explain(workspace, tmp_path / "lenient", "llava_onevision",
                                                  config=SMALL, budget=8).config)
    ok = [r for r in lenient if r["error"] is None]
    assert ok, "every question failed"
    for row in ok:
        n_players = len(row["features"])
        assert row["budget"] == 2 * n_players + 1 and 0 < row["evaluations"] <= row["budget"]
        phi = np.asarray(row["shapley"])
        assert np.allclose(phi.sum(0), np.subtract(row["value_full"], row["value_empty"]), atol=1e-4)
    strict = _load(tmp_path / "strict", _explain(workspace, tmp_path / "strict", "llava_onevision",
                                                config=SMALL, budget=8, strict_budget=True).config)
    assert {r["qid"] for r in strict if r["error"] and "budget=8 is too small" in r["error"]} == {r["qid"] for r in ok}


def test_target_error_stops_below_it_or_at_the_budget_and_rows_record_the_error(workspace, tmp_path):
    """With ``target_error`` a question stops once its recorded relative error is below the target
    (spending less than the budget) or spends the whole budget; every row records relative_error."""
    plain = _load(tmp_path / "plain", _explain(workspace, tmp_path / "plain", "llava_onevision", config=SMALL,
                                               budget=4000, estimator="permutation").config)
    loose = max(r["relative_error"] for r in plain if r["error"] is None) * 4
    adaptive = _load(tmp_path / "adaptive", _explain(workspace, tmp_path / "adaptive", "llava_onevision", config=SMALL,
                                                     budget=4000, estimator="permutation", target_error=loose).config)
    ok = [r for r in adaptive if r["error"] is None]
    assert ok
    for row, base in zip(ok, [r for r in plain if r["error"] is None]):
        assert row["relative_error"] < loose and row["evaluations"] < base["evaluations"]
        assert base["relative_error"] > 0
    tight = _load(tmp_path / "tight", _explain(workspace, tmp_path / "tight", "llava_onevision", config=SMALL,
                                               budget=400, estimator="permutation", target_error=1e-9).config)
    for row in (r for r in tight if r["error"] is None):
        # not reached: the whole cap was spent (at least the estimator's minimum, 2F+1)
        assert row["relative_error"] >= 1e-9 and row["budget"] >= 400 and row["evaluations"] > row["budget"] / 2
