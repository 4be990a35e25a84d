"""``vqa-shap run STUDY.yaml``: the study file's checks (one line naming the file and the key, exit 2),
the plan, and a real tiny run on the demo model that is resumable at every step: a second run
recomputes nothing, and a deleted output recomputes only its step (and what reads a changed output)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.helpers import torch_threads
from vqa_shap.cli import main

_threads = torch_threads(1)

#: The tiny study of the end-to-end tests: the demo model on 3 synthetic questions, 2 variants.
TINY = """\
name: tiny
models:
  - model: demo
benchmarks:
  - builder: synthetic
    generate: {questions: 3, seed: 5}
variants: [original, hard_1]
explain: {frames: 4, budget: 8, estimator: permutation, threads: 1}
metrics: {bootstrap: 10}
report: {max_questions: 1, bootstrap: 10}
view: {bootstrap: 10}
"""


def _write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _fail(tmp_path, capsys, text: str) -> str:
    path = _write(tmp_path, text)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err  # names the file
    assert not (tmp_path / "out").exists()  # nothing written
    return err


BASE = "models: [{model: demo}]\nbenchmarks: [{builder: synthetic, generate: {questions: 2}}]\n"

BAD = {
    "unknown top-level key": ("modles: []\n" + BASE, "key 'modles': unknown key; valid keys: name, models"),
    "missing models": ("benchmarks: [{builder: synthetic, generate: {}}]\n", "key 'models': missing (required)"),
    "unknown estimator": (BASE + "explain: {estimator: exactt}\n",
                          "key 'explain.estimator': unknown estimator 'exactt'; valid estimators: "),
    "unknown builder": ("models: [{model: demo}]\nbenchmarks: [{builder: egoshcema, source: .}]\n",
                        "key 'benchmarks[0].builder': unknown builder 'egoshcema'; valid builders: egoschema, hd-epic"),
    "unknown loader": ("models: [{model: demo, loader: llava_one}]\n" + BASE.split("\n", 1)[1],
                       "key 'models[0].loader': unknown loader 'llava_one'; valid loaders: "),
    "unknown variant": (BASE + "variants: [original, hard5]\n",
                        "key 'variants[1]': unknown variant 'hard5'; valid: original, easy, hard_<N>"),
    "budget not an integer": (BASE + "explain: {budget: true}\n", "key 'explain.budget': expected an integer, got True"),
    "frames out of range": (BASE + "explain: {frames: 0}\n", "key 'explain.frames': must be between 1 and 4096, got 0"),
    "unknown explain key": (BASE + "explain: {budgte: 8}\n", "key 'explain.budgte': unknown key; valid keys: frames"),
    "model override": ("models: [{model: demo, explain: {sampler: evry}}]\n" + BASE.split("\n", 1)[1],
                       "key 'models[0].explain.sampler': unknown sampler 'evry'; valid samplers: "),
    "missing source folder": ("models: [{model: demo}]\nbenchmarks: [{builder: egoschema, source: nowhere}]\n",
                              "key 'benchmarks[0].source': folder "),
    "generate for a builder that cannot": ("models: [{model: demo}]\nbenchmarks: [{builder: egoschema, generate: {}}]\n",
                                           "key 'benchmarks[0].generate': builder 'egoschema' cannot generate its "
                                           "source; builders that can: synthetic"),
    "source and generate": ("models: [{model: demo}]\nbenchmarks: [{builder: synthetic, source: ., generate: {}}]\n",
                            "key 'benchmarks[0].source': give either 'source'"),
    "duplicate model names": ("models: [{model: demo}, {model: demo}]\n" + BASE.split("\n", 1)[1],
                              "key 'models[1].name': 'demo' is used twice"),
    "bad name": ("name: a/b\n" + BASE, "key 'name': invalid name 'a/b'"),
    "models not a list": ("models: demo\n" + BASE.split("\n", 1)[1], "key 'models': expected a non-empty list"),
    "confidence": (BASE + "metrics: {confidence: 95}\n", "key 'metrics.confidence': must be a number strictly between"),
    "not a mapping": ("- models\n", "key '(top level)': expected a mapping of keys"),
    "not YAML": ("models: [demo\nbenchmarks: x\n", "not valid YAML (line "),
    "unknown shot detector": (BASE + "explain: {players: shots, shot_detector: cuts}\n",
                              "key 'explain.shot_detector': unknown shot detector 'cuts'; valid shot detectors: diff"),
    "shot detector weights missing": (BASE + "explain: {players: shots, shot_detector: 'transnetv2:/no/such.pth'}\n",
                                      "key 'explain.shot_detector': transnetv2 weights file /no/such.pth not found"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_study_files_fail_with_one_line_naming_the_key(case, tmp_path, capsys):
    text, expected = BAD[case]
    assert expected in _fail(tmp_path, capsys, text)


def test_a_missing_study_file_lists_the_bundled_ones(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.yaml: no such study file; bundled studies: demo" in err


def test_an_unknown_model_stops_the_run_before_any_work(tmp_path, capsys):
    path = _write(tmp_path, "models: [{model: tiny-random/not_a_family}]\n" + BASE.split("\n", 1)[1])
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "key 'models[0].model'" in err and "not_a_family" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "benchmarks").exists()


def test_the_bundled_demo_study_parses_and_its_plan_is_printed_without_writing(tmp_path, capsys):
    from vqa_shap.study.spec import load_study

    study = load_study("demo")
    assert study.models[0].model == "demo" and study.benchmarks[0].builder == "synthetic"
    assert len(study.variants) >= 2 and study.report is not None and study.view is not None
    assert main(["run", "demo", "--out", str(tmp_path / "d"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[todo] generate-synthetic" in out and "[todo] build-synthetic" in out
    assert "planned once it is built" in out and "[done]" not in out
    assert not (tmp_path / "d").exists()


def test_a_non_empty_folder_no_study_wrote_is_refused(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    path = _write(tmp_path, TINY)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "is not empty and was not written by vqa-shap run" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# a real run


def _snapshot(folder: Path) -> dict[str, int]:
    """Every file's modification time (the step records excepted)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and ".study" not in p.parts}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from vqa_shap.study.study_run import run_study
    from vqa_shap.study.spec import load_study

    root = tmp_path_factory.mktemp("study")
    study = load_study(_write(root, TINY))
    lines: list[str] = []
    result = run_study(study, root / "out", progress=False, echo=lines.append)
    return study, root / "out", result, lines


def test_a_tiny_study_runs_every_step_and_its_outputs_load(tiny_run):
    import datasets

    study, out, result, lines = tiny_run
    assert result.ran == ("generate-synthetic", "build-synthetic", "explain-demo__synthetic",
                          "augment-synthetic-synthetic_hard_1", "explain-demo__synthetic_hard_1",
                          "report-synthetic", "view-synthetic", "metrics")
    assert result.evaluations > 0
    for config, n_options in (("demo__synthetic", 4), ("demo__synthetic_hard_1", 5)):
        rows = datasets.load_dataset(str(out / "attributions"), name=config, split="test")
        assert len(rows) == 3 and all(r["error"] is None for r in rows)
        assert {len(r["value_full"]) for r in rows} == {n_options}  # one score per option
    questions = datasets.load_dataset(str(out / "benchmarks/synthetic/questions"), name="synthetic_hard_1",
                                      split="test")
    assert len(questions) == 3
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert {r["config"] for r in metrics} == {"demo__synthetic", "demo__synthetic_hard_1"}
    assert (out / "benchmarks/synthetic/report/modality_shares.png").stat().st_size > 0
    assert (out / "benchmarks/synthetic/site/index.html").is_file()
    assert any("MC V" in line for line in lines)  # the paper's table is printed


def test_a_second_run_recomputes_nothing(tiny_run):
    from vqa_shap.study.study_run import run_study

    study, out, first, _ = tiny_run
    before = _snapshot(out)
    result = run_study(study, out, progress=False, echo=lambda line: None)
    assert result.ran == () and result.evaluations == 0 and len(result.done) == len(first.ran)
    assert _snapshot(out) == before  # not a file rewritten


def test_a_deleted_output_recomputes_only_its_step(tiny_run):
    import shutil

    from vqa_shap.study.study_run import run_study

    study, out, _, _ = tiny_run
    (out / "metrics.json").unlink()
    before = _snapshot(out)
    result = run_study(study, out, progress=False, echo=lambda line: None)
    assert result.ran == ("metrics",) and result.evaluations == 0
    after = _snapshot(out)
    assert {k for k in after if after[k] != before.get(k)} == {"metrics.json", "metrics.md"}

    # an explain output: assembled again from its work files, nothing evaluated; the same rows, so the
    # report, site and metrics that read it stay done
    shutil.rmtree(out / "attributions" / "demo__synthetic_hard_1")
    result = run_study(study, out, progress=False, echo=lambda line: None)
    assert result.ran == ("explain-demo__synthetic_hard_1",) and result.evaluations == 0


def test_an_interrupted_explain_resumes_per_question(tiny_run):
    import shutil

    from vqa_shap.explain.workdir import work_dir_for
    from vqa_shap.study.study_run import run_study

    study, out, _, _ = tiny_run
    config = "demo__synthetic"
    work = work_dir_for(out / "attributions", config)
    results = sorted(work.path.glob("*.json"))
    results = [p for p in results if p.name != "settings.json"]
    assert len(results) == 3
    # as a kill leaves it: the config not written, one question's work file missing
    shutil.rmtree(out / "attributions" / config)
    results[0].unlink()
    lines: list[str] = []
    result = run_study(study, out, progress=False, echo=lines.append)
    assert result.ran[0] == f"explain-{config}" and result.evaluations > 0
    assert any("1 explained now, 2 resumed" in line for line in lines), lines


def test_changed_settings_redo_the_explain_steps_and_what_follows(tiny_run, capsys):
    import dataclasses

    from vqa_shap.study.study_run import describe

    study, out, _, _ = tiny_run
    model = study.models[0]
    changed = dataclasses.replace(study, models=(dataclasses.replace(
        model, explain=dataclasses.replace(model.explain, budget=model.explain.budget + 50)),))
    lines: list[str] = []
    found = describe(changed, out, echo=lines.append)
    state = {step.id: s for step, s in found}
    assert state["build-synthetic"].done and state["augment-synthetic-synthetic_hard_1"].done
    assert state["explain-demo__synthetic"].reason == "its settings changed"
    assert state["report-synthetic"].reason.startswith("after explain-")
    assert os.path.isdir(out / "attributions" / "demo__synthetic")


def test_the_study_file_of_the_docs_parses_as_it_says(tmp_path):
    """docs/study.md's example file: every key it shows is accepted and means what its comments say."""
    import re

    from vqa_shap.study.spec import load_study

    page = (Path(__file__).resolve().parents[1] / "docs" / "study.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", page, flags=re.M | re.S)
    assert len(blocks) == 1
    (tmp_path / "data" / "egoschema" / "videos").mkdir(parents=True)
    (tmp_path / "data" / "subset.csv").write_text("q_uid\n")
    study = load_study(_write(tmp_path, blocks[0], "paper.yaml"))
    assert study.name == "paper" and study.out == tmp_path / "results" / "paper"
    big, = study.models
    assert (big.name, big.loader, big.explain.frames, big.explain.budget, big.explain.target_error) == (
        "llava-ov-7b", "llava_onevision", 32, 8192, 0.3)
    ego, shapes = study.benchmarks
    assert ego.videos == tmp_path / "data" / "egoschema" / "videos" and ego.subset == tmp_path / "data" / "subset.csv"
    assert (shapes.name, shapes.generate.questions, shapes.source) == ("shapes", 60, None)
    assert study.variants == ("original", "easy", "hard_5", "hard_10") and study.augment.dedupe
    assert study.metrics.bootstrap == 1000 and study.report.max_questions == 3 and study.view.title == "my study"


def test_a_local_checkpoint_is_relative_to_the_study_file(tmp_path, monkeypatch):
    from vqa_shap.study.spec import load_study

    (tmp_path / "ckpts" / "mine").mkdir(parents=True)
    (tmp_path / "ckpts" / "mine" / "config.json").write_text('{"model_type": "llava_onevision"}')
    path = _write(tmp_path, "models: [{model: ckpts/mine, loader: llava_onevision}, {model: org/hub-id}]\n"
                  + BASE.split("\n", 1)[1])
    monkeypatch.chdir(tmp_path.parent)  # not the study's folder
    local, hub_id = load_study(path).models
    assert (local.model, local.name) == (str(tmp_path / "ckpts" / "mine"), "ckpts-mine")
    assert (hub_id.model, hub_id.name) == ("org/hub-id", "org-hub-id")


def test_the_docs_table_of_the_demo_study_is_the_committed_record():
    import json

    from vqa_shap.measure.study_demo import TABLE_END, TABLE_START, metrics_table

    root = Path(__file__).resolve().parents[1]
    record = json.loads((root / "benchmarks" / "study_demo.json").read_text())
    page = (root / "docs" / "study.md").read_text()
    assert page[page.index(TABLE_START) + len(TABLE_START) + 1:page.index(TABLE_END)] == metrics_table(record)
    assert record["first_run"]["evaluations"] == 4608 and record["second_run"]["evaluations"] == 0
    assert record["second_run"]["steps"] == 0 and record["first_run"]["steps"] == 10
    assert len(record["ground_truth_rows"]) == 3 and len(record["first_run"]["loadavg_start"]) == 3


def test_a_video_rewritten_under_its_name_redoes_the_explain_steps(tiny_run):
    """A changed video (same name) is an input change: the explain steps that read it run again from
    scratch (not resumed from the old work files)."""
    import datasets

    from vqa_shap.study.study_run import run_study
    from vqa_shap.study.study_run import describe
    from vqa_shap.synthetic_inputs import write_video
    from vqa_shap.video import read_frames, video_info

    study, out, _, _ = tiny_run
    questions = out / "benchmarks" / "synthetic" / "questions"
    row = datasets.load_dataset(str(questions), name="synthetic", split="test")[0]
    videos = [p for p in out.rglob(row["inputs"][0]["path"]) if ".study" not in p.parts]
    assert len(videos) == 1, videos
    video = videos[0]
    frames = read_frames(video, list(range(video_info(video).n_frames)))
    write_video(video, 255 - frames, video_info(video).fps)  # the same name, other pictures
    state = {step.id: s for step, s in describe(study, out, echo=lambda line: None)}
    # the videos live in the generated source, so the build sees them change first
    assert state["build-synthetic"].reason == "its inputs changed"
    assert state["explain-demo__synthetic"].reason == "after build-synthetic"
    lines: list[str] = []
    result = run_study(study, out, progress=False, echo=lines.append)
    assert {"explain-demo__synthetic", "explain-demo__synthetic_hard_1"} <= set(result.ran), lines
    assert result.evaluations > 0, lines
    assert sum("3 explained now, 0 resumed" in line for line in lines) == 2, lines
    again = run_study(study, out, progress=False, echo=lambda line: None)
    assert again.ran == () and again.evaluations == 0


def test_a_study_with_target_error_records_it_and_stops_each_question_below_it(tmp_path):
    """``explain: {target_error: E}``: every question stops once its estimated relative error is below E
    (spending well under the budget), the step record, the work settings and the card record E, and a
    changed E redoes the explain step."""
    import dataclasses

    import datasets

    from vqa_shap.explain.workdir import work_dir_for
    from vqa_shap.study.spec import load_study
    from vqa_shap.study.steps import Records
    from vqa_shap.study.study_run import describe, run_study

    budget, target = 4000, 0.6
    text = TINY.replace("variants: [original, hard_1]", "variants: [original]").replace(
        "explain: {frames: 4, budget: 8, estimator: permutation, threads: 1}",
        f"explain: {{frames: 4, budget: {budget}, target_error: {target}, estimator: permutation, threads: 1}}")
    text = text.replace("report: {max_questions: 1, bootstrap: 10}", "report: false").replace(
        "view: {bootstrap: 10}\n", "").replace("metrics: {bootstrap: 10}", "metrics: false")
    study = load_study(_write(tmp_path, text))
    assert study.models[0].explain.target_error == target
    out = tmp_path / "out"
    result = run_study(study, out, progress=False, echo=lambda line: None)
    assert result.ran == ("generate-synthetic", "build-synthetic", "explain-demo__synthetic")
    rows = datasets.load_dataset(str(out / "attributions"), name="demo__synthetic", split="test")
    assert len(rows) == 3
    for row in rows:
        assert row["error"] is None and row["budget"] == budget
        assert 0 < row["relative_error"] < target and row["evaluations"] < budget / 2
    assert Records(out).read("explain-demo__synthetic")["settings"]["target_error"] == target
    assert work_dir_for(out / "attributions", "demo__synthetic").settings().target_error == target
    assert f"target error {target}" in (out / "attributions" / "README.md").read_text()
    model = study.models[0]
    tighter = dataclasses.replace(study, models=(dataclasses.replace(
        model, explain=dataclasses.replace(model.explain, target_error=target / 2)),))
    state = {step.id: s for step, s in describe(tighter, out, echo=lambda line: None)}
    assert state["explain-demo__synthetic"].reason == "its settings changed"
