"""explain with a careless user: stale work files, unsafe qids and paths, bad names, empty shards, two
runs at once, questions that cannot fit, more frames than a video has, and the demo's output folder."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from vqa_shap.schema.records import Question, VisualInput

MODEL = "tiny-random/llava_onevision"
CONFIG = "toy"
N_QUESTIONS = 8


def _questions(n: int = N_QUESTIONS) -> list[Question]:
    return [Question(f"q{i}", "egoschema", "summary", f"What does c do {i}?", ("cut", "wash", "read"), i % 3,
                     inputs=(VisualInput("video", f"v/q{i}.mp4"),)) for i in range(n)]


def _write(folder: Path, questions, config: str = CONFIG) -> None:
    from vqa_shap.hub.folder import write_questions

    write_questions(folder, config, questions, overwrite=True)


def _run(ws, out, **kw):
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions

    args = dict(model=MODEL, video_root=ws["videos"], out=out, frames=2, budget=8, seed=0, batch_size=16,
                progress=False)
    args.update(kw)
    config = args.pop("config", CONFIG)
    return explain_questions(ExplainRun(args.pop("questions", ws["questions"]), config, **args))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("explain_inputs")
    questions = _questions()
    _write(root / "questions", questions)
    synthesize_inputs(questions, root / "videos", n_frames=8, size=(32, 32), seed=0)
    return {"root": root, "questions": root / "questions", "videos": root / "videos", "list": questions}


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


# --------------------------------------------------------------------------------------------
# the work directory keys results on the question's content and on every setting


def test_changed_question_is_explained_again_after_overwrite(ws, tmp_path):
    out = tmp_path / "out"
    first = _run(ws, out)
    assert (first.n_computed, first.n_errors) == (N_QUESTIONS, 0)
    fixed = list(ws["list"])
    fixed[2] = dataclasses.replace(fixed[2], answer=(fixed[2].answer + 1) % 3, question="What does c hold?")
    folder = tmp_path / "questions"
    _write(folder, fixed)
    second = _run(ws, out, questions=folder, overwrite=True)
    assert (second.n_resumed, second.n_computed) == (N_QUESTIONS - 1, 1)
    row = second.dataset[2]
    assert row["qid"] == "q2" and row["answer"] == fixed[2].answer
    assert any("hold" in f["name"] for f in row["features"] if f["modality"] == "question")
    from vqa_shap.explain.explain_run import load_fresh

    assert load_fresh(out, first.config)[2]["answer"] == fixed[2].answer


@pytest.mark.parametrize("change", ["video_root", "dtype"])
def test_changed_video_root_or_dtype_is_refused_not_reused(ws, tmp_path, change):
    import shutil

    from vqa_shap.explain.workdir import ExplainError

    out = tmp_path / "out"
    _run(ws, out)
    other = {"dtype": "float32"}
    if change == "video_root":
        other = {"video_root": tmp_path / "copy"}
        shutil.copytree(ws["videos"], other["video_root"])
    with pytest.raises(ExplainError, match=f"{change}: .* recorded"):
        _run(ws, out, overwrite=True, **other)
    # --restart discards the earlier results and recomputes with the new settings
    assert _run(ws, out, overwrite=True, restart=True, **other).n_computed == N_QUESTIONS


# --------------------------------------------------------------------------------------------
# paths: qids and input paths stay contained


def test_unsafe_qids_never_leave_the_work_dir_and_resume(ws, tmp_path):
    qids = ["..", "../../x", "/abs/path", ".hidden"]
    questions = [dataclasses.replace(q, qid=qid) for q, qid in zip(ws["list"], qids)]
    folder = tmp_path / "questions"
    _write(folder, questions)
    out = tmp_path / "deep" / "out"
    before = _files_under(tmp_path)
    result = _run(ws, out, questions=folder)
    assert result.n_errors == 0 and list(result.dataset["qid"]) == qids
    created = _files_under(tmp_path) - before
    assert all(out in p.parents or p == out or p in out.parents for p in created), created
    work_files = [p.name for p in result.work_dir.glob("*.json") if p.name != "settings.json"]
    assert len(work_files) == len(qids) and not any(n.startswith(".") for n in work_files)
    again = _run(ws, out, questions=folder, overwrite=True)
    assert (again.n_resumed, again.n_computed) == (len(qids), 0)


def test_input_path_outside_the_video_root_is_an_error_row(ws, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(ws["videos"], root / "inside")
    shutil.copy(ws["videos"] / "v" / "q0.mp4", tmp_path / "outside.mp4")
    q = ws["list"]
    questions = [dataclasses.replace(q[0], inputs=(VisualInput("video", "inside/v/q0.mp4"),)),
                 dataclasses.replace(q[1], inputs=(VisualInput("video", "../outside.mp4"),)),
                 dataclasses.replace(q[2], inputs=(VisualInput("video", str(tmp_path / "outside.mp4")),))]
    folder = tmp_path / "questions"
    _write(folder, questions)
    result = _run(ws, tmp_path / "out", questions=folder, video_root=root)
    errors = result.dataset["error"]
    assert errors[0] is None
    assert "outside the video root" in errors[1] and "../outside.mp4" in errors[1]
    assert "outside the video root" in errors[2]


# --------------------------------------------------------------------------------------------
# names, shards, locks: checked before any work


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", ".hidden", ""])
def test_bad_name_is_refused_before_anything_is_written(ws, tmp_path, name, capsys):
    from vqa_shap.cli import main
    from vqa_shap.explain.workdir import ExplainInputError

    out = tmp_path / "sub" / "out"
    with pytest.raises(ExplainInputError, match="not a valid config name"):
        _run(ws, out, name=name)
    if name:  # argparse gives '' to --name as is
        code = main(["explain", str(ws["questions"]), "--config", CONFIG, "--model", MODEL, "--video-root",
                     str(ws["videos"]), "--out", str(out), "--name", name, "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert _files_under(tmp_path) == set()


def test_shard_bounds_cover_every_question_once():
    from vqa_shap.explain.workdir import Shard

    for n in (0, 1, 7, 8, 9, 100):
        for world in (1, 3, 8, 10, 13):
            parts = [Shard(r, world).bounds(n) for r in range(world)]
            covered = [i for a, b in parts for i in range(a, b)]
            assert covered == list(range(n)), (n, world)


def test_empty_shard_finishes_cleanly_and_merge_completes(ws, tmp_path, capsys):
    from vqa_shap.cli import main
    from vqa_shap.explain.explain_run import load_fresh
    from vqa_shap.explain.merge import merge_shards

    out, work = tmp_path / "out", tmp_path / "work"
    code = main(["explain", str(ws["questions"]), "--config", CONFIG, "--model", MODEL, "--video-root",
                 str(ws["videos"]), "--out", str(out), "--rank", "9", "--world-size", "10", "--no-progress",
                 "--frames", "2", "--budget", "8", "--work-dir", str(work)])
    assert code == 0 and "0 questions" in capsys.readouterr().out
    # the other shards, resumed from one full run into the same work directory (no model loaded again)
    _run(ws, tmp_path / "single", work_dir=work)
    results = [_run(ws, out, rank=r, world_size=10, work_dir=work) for r in range(10)]
    assert [r.n_questions for r in results] == [1] * 8 + [0, 0]
    assert all(not r.written and r.n_errors == 0 for r in results)
    merged = merge_shards([work], out=out)
    assert merged[0].n_rows == N_QUESTIONS
    assert list(load_fresh(out, merged[0].config)["qid"]) == [q.qid for q in ws["list"]]


def test_second_explain_on_a_locked_work_dir_stops_at_once(ws, tmp_path):
    from vqa_shap.explain.workdir import ExplainInputError, Shard, attributions_config, work_dir_for

    out = tmp_path / "out"
    work = work_dir_for(out, attributions_config(MODEL, CONFIG))
    with work.lock(Shard()):
        with pytest.raises(ExplainInputError, match="another explain is already working"):
            _run(ws, out)
        assert not work.settings_path.exists()  # nothing done
    assert _run(ws, out).n_computed == N_QUESTIONS  # the lock is released with its holder


# --------------------------------------------------------------------------------------------
# what cannot fit, and more frames than a video has


def test_question_that_cannot_fit_is_an_error_row_not_a_crash(ws, tmp_path):
    from vqa_shap.explain_options import MAX_PLAYERS

    q = ws["list"]
    huge = " ".join(["word"] * (MAX_PLAYERS + 10)) + "?"
    questions = [q[0], dataclasses.replace(q[1], question=huge), q[2]]
    folder = tmp_path / "questions"
    _write(folder, questions)
    result = _run(ws, tmp_path / "out", questions=folder)
    errors = result.dataset["error"]
    assert errors[0] is None and errors[2] is None
    assert f"exceed the limit of {MAX_PLAYERS}" in errors[1]
    # the largest budget the options allow (MAX_BUDGET) times 300 players is more than fits
    from vqa_shap.explain_options import MAX_BUDGET

    long = " ".join(["word"] * 300) + "?"
    _write(tmp_path / "long", [dataclasses.replace(q[0], question=long), questions[1],
                               dataclasses.replace(q[2], question=long)])
    big_budget = _run(ws, tmp_path / "out2", questions=tmp_path / "long", budget=MAX_BUDGET)
    assert all("does not fit in memory" in e for e in big_budget.dataset["error"] if "exceed the limit" not in e)
    assert big_budget.n_errors == 3 and big_budget.evaluations == 0


def test_too_many_frames_is_refused_up_front(ws, tmp_path, capsys):
    from vqa_shap.cli import main
    from vqa_shap.explain.workdir import ExplainInputError

    with pytest.raises(ExplainInputError, match="frames: must be between 1 and 4096, got 10000"):
        _run(ws, tmp_path / "out", frames=10000)
    code = main(["explain", str(ws["questions"]), "--config", CONFIG, "--model", MODEL, "--video-root",
                 str(ws["videos"]), "--out", str(tmp_path / "out"), "--frames", "10000"])
    assert code == 2 and "10000" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_more_frames_than_the_video_has_warns_once_per_run(ws, tmp_path, caplog):
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = ws["list"][:3]
    videos = tmp_path / "one_frame"
    synthesize_inputs(questions, videos, n_frames=1, size=(32, 32), seed=0)
    with caplog.at_level(logging.WARNING, logger="vqa_shap.explain"):
        result = _run(ws, tmp_path / "out", config=CONFIG, questions=_three(ws, tmp_path, questions),
                      video_root=videos, frames=4)
    assert result.n_errors == 0
    # the paper's behaviour is kept: 4 players at the one timestamp
    assert [f["modality"] for f in result.dataset[0]["features"]].count("video") == 4
    warnings = [r for r in caplog.records if "distinct frame" in r.getMessage()]
    assert len(warnings) == 1 and "4 frames requested" in warnings[0].getMessage()


def _three(ws, tmp_path, questions) -> Path:
    folder = tmp_path / "questions3"
    _write(folder, questions)
    return folder


# --------------------------------------------------------------------------------------------
# the demo never deletes what it did not create


def test_demo_refuses_a_folder_holding_unmerged_shard_results(tmp_path, capsys):
    from vqa_shap.cli import main
    from vqa_shap.commands.demo import DEMO_MARKER, claim_output_folder

    shard_file = tmp_path / "dir" / ".work" / "m__toy" / "q1-abc.json"
    shard_file.parent.mkdir(parents=True)
    shard_file.write_text('{"qid": "q1"}')
    code = main(["demo", "--out", str(tmp_path / "dir")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not written by vqa-shap demo" in err and len(err.splitlines()) == 1
    assert shard_file.read_text() == '{"qid": "q1"}'
    assert not (tmp_path / "dir" / DEMO_MARKER).exists()
    # an empty or earlier demo folder is fine; --overwrite allows the rest but the demo never touches .work
    claim_output_folder(tmp_path / "fresh")
    claim_output_folder(tmp_path / "fresh")
    claim_output_folder(tmp_path / "dir", overwrite=True)
    assert shard_file.exists() and (tmp_path / "dir" / DEMO_MARKER).exists()


def test_questions_given_as_a_file_is_a_clear_error(ws, tmp_path):
    from vqa_shap.explain.workdir import ExplainInputError

    file = tmp_path / "questions.json"
    file.write_text("[]")
    with pytest.raises(ExplainInputError, match="is a file; give the Hub-style folder"):
        _run(ws, tmp_path / "out", questions=file)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, message", [
    (dict(frames=0), "frames: must be between 1 and 4096, got 0"), (dict(budget=1.5), "budget: expected an integer"),
    (dict(seed=-1), "seed: must be between 0 and 4294967295, got -1"), (dict(seed=2**32), "seed: must be between"),
    (dict(batch_size=0), "batch_size: must be"), (dict(players="shot"), "players: unknown players value 'shot'"), (dict(sampler="zigzag"), "unknown sampler 'zigzag'; valid samplers"),
    (dict(estimator="nope"), "nope"),
])
def test_bad_settings_fail_before_any_work(ws, tmp_path, bad, message):
    from vqa_shap.explain.workdir import ExplainInputError

    with pytest.raises(ExplainInputError, match=message):
        _run(ws, tmp_path / "out", **bad)
    assert not (tmp_path / "out").exists()
