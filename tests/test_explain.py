"""explain's bookkeeping without a model: names, shards, work files, settings guard, merge checks."""

from __future__ import annotations

import json
import os

import pytest

from vqa_shap.explain.workdir import (SETTINGS_FILE, WORK_DIRNAME, ExplainError, ExplainSettings, Shard, WorkDir,
                                      attributions_config, model_slug, work_dir_for)
from vqa_shap.explain.merge import assemble, merge_shards
from vqa_shap.explain.explain_run import load_fresh
from vqa_shap.schema.records import ATTRIBUTION_COLUMNS


def test_model_slug_and_config_name(tmp_path):
    assert model_slug("tiny-random/llava_onevision") == "tiny-random-llava_onevision"
    assert model_slug("llava-hf/LLaVA-Video-7B-Qwen2-hf") == "llava-hf-LLaVA-Video-7B-Qwen2-hf"
    local = tmp_path / "my model"
    local.mkdir()
    assert model_slug(str(local)) == "my-model"
    assert model_slug(str(local) + "/") == "my-model"
    assert attributions_config("tiny-random/qwen2_5_vl", "hd-epic_hard_5") == "tiny-random-qwen2_5_vl__hd-epic_hard_5"
    with pytest.raises(ExplainError):
        model_slug("///")


@pytest.mark.parametrize(
    "env, args, expected",
    [
        ({}, (None, None), (0, 1)),
        ({"RANK": "1", "WORLD_SIZE": "4"}, (None, None), (1, 4)),  # torchrun
        ({"SLURM_PROCID": "2", "SLURM_NTASKS": "3"}, (None, None), (2, 3)),  # SLURM
        ({"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "5", "SLURM_NTASKS": "8"}, (None, None), (1, 2)),
        ({"RANK": "1", "WORLD_SIZE": "2"}, (0, 3), (0, 3)),  # arguments win
    ],
)
def test_shard_from_arguments_torchrun_and_slurm(env, args, expected):
    shard = Shard.resolve(*args, environ=env)
    assert (shard.rank, shard.world_size) == expected


def test_shard_rejects_bad_values():
    with pytest.raises(ExplainError, match="rank 2 of world size 2"):
        Shard.resolve(2, 2, environ={})
    with pytest.raises(ExplainError, match="WORLD_SIZE"):
        Shard.resolve(environ={"WORLD_SIZE": "two"})


def _settings(**kw) -> ExplainSettings:
    base = dict(model="tiny-random/llava_onevision", loader="llava_onevision", protocol="pollard2025",
                estimator="default", budget=64, seed=0, n_frames=4, sampler=None, questions_config="toy",
                config="tiny-random-llava_onevision__toy", qids=("q1", "q/2", "q_2"))
    base.update(kw)
    return ExplainSettings(**base)


def _row(qid: str, *, error: str | None = None) -> dict:
    row = {c: None for c in ATTRIBUTION_COLUMNS}
    row.update(qid=qid, benchmark="toy", task="t", variant="original", model="tiny-random/llava_onevision",
               loader="llava_onevision", protocol="pollard2025", estimator="default", budget=64, seed=0,
               answer=1, version="0", evaluations=0, runtime_s=0.5, error=error, features=[], shapley=[])
    if error is None:
        row.update(
            features=[{"name": "frame_1", "modality": "video", "option": -1, "input": 0, "time": 0.0},
                      {"name": "why", "modality": "question", "option": -1, "input": -1, "time": None}],
            shapley=[[0.25, -0.5], [0.125, 1.0]], value_full=[1.0, 2.0], value_empty=[0.625, 1.5],
            prediction=1, evaluations=4,
        )
    return row


def test_work_files_are_atomic_and_collision_free(tmp_path):
    work = WorkDir(tmp_path / "w")
    work.claim(_settings())
    for qid in ("q1", "q/2", "q_2"):
        work.write(_row(qid))
    names = sorted(p.name for p in work.path.iterdir())
    assert SETTINGS_FILE in names and len(names) == 4  # settings + one file per qid, no temp files left
    assert not [n for n in names if ".tmp-" in n]
    assert work.result_path("q/2") != work.result_path("q_2")
    assert set(work.results()) == {"q1", "q/2", "q_2"}
    assert work.results()["q/2"]["shapley"] == [[0.25, -0.5], [0.125, 1.0]]


def test_error_rows_count_as_finished_unless_retried(tmp_path):
    work = WorkDir(tmp_path / "w")
    work.claim(_settings())
    work.write(_row("q1"))
    work.write(_row("q_2", error="video missing"))
    assert work.finished_qids() == {"q1", "q_2"}
    assert work.finished_qids(retry_errors=True) == {"q1"}


def test_resume_with_other_settings_is_refused(tmp_path):
    work = WorkDir(tmp_path / "w")
    work.claim(_settings())
    work.claim(_settings())  # same settings: fine
    with pytest.raises(ExplainError, match=r"budget: 64 recorded, 128 now"):
        work.claim(_settings(budget=128))
    with pytest.raises(ExplainError, match="question list differs"):
        work.claim(_settings(qids=("q1",)))


def test_unreadable_result_file_names_the_file(tmp_path):
    work = WorkDir(tmp_path / "w")
    work.claim(_settings())
    bad = work.result_path("q1")
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ExplainError, match=bad.name):
        work.results()


def _shard_folder(root, name, rows, settings=None):
    settings = settings or _settings()
    work = work_dir_for(root / name, settings.config)
    work.claim(settings)
    for row in rows:
        work.write(row)
    return root / name


def test_merge_assembles_in_question_order_and_loads(tmp_path):
    from vqa_shap.schema.arrow import attribution_features

    a = _shard_folder(tmp_path, "a", [_row("q_2"), _row("q1")])
    b = _shard_folder(tmp_path, "b", [_row("q/2", error="VideoError: missing video x.mp4")])
    (result,) = merge_shards([a, b], out=tmp_path / "out")
    assert (result.config, result.n_rows, result.n_errors) == ("tiny-random-llava_onevision__toy", 3, 1)
    ds = load_fresh(tmp_path / "out", result.config)
    assert ds.features == attribution_features()
    assert ds["qid"] == ["q1", "q/2", "q_2"]  # the questions order, not the shard order
    assert ds["error"] == [None, "VideoError: missing video x.mp4", None]
    assert ds[0]["shapley"] == [[0.25, -0.5], [0.125, 1.0]]
    assert ds[1]["value_full"] is None and ds[1]["shapley"] == []


def test_merge_refuses_missing_and_allows_partial(tmp_path):
    a = _shard_folder(tmp_path, "a", [_row("q1")])
    with pytest.raises(ExplainError, match=r"2 of 3 questions have no result yet \(first: q/2, q_2\)"):
        merge_shards([a])
    (result,) = merge_shards([a], allow_partial=True)
    assert result.missing == ("q/2", "q_2") and result.n_rows == 1
    assert load_fresh(a, result.config)["qid"] == ["q1"]
    with pytest.raises(ExplainError, match="already has config"):
        merge_shards([a], allow_partial=True)
    merge_shards([a], allow_partial=True, overwrite=True)


def test_merge_refuses_duplicates_and_mixed_settings(tmp_path):
    a = _shard_folder(tmp_path, "a", [_row("q1"), _row("q/2")])
    b = _shard_folder(tmp_path, "b", [_row("q/2"), _row("q_2")])
    with pytest.raises(ExplainError, match=r"1 questions were explained in more than one shard folder: 'q/2'"):
        merge_shards([a, b], out=tmp_path / "out")
    c = _shard_folder(tmp_path, "c", [_row("q_2")], settings=_settings(seed=1))
    with pytest.raises(ExplainError, match="different settings"):
        merge_shards([a, c], out=tmp_path / "out")
    # the same videos under another path on another machine: merged
    d = _shard_folder(tmp_path, "d", [_row("q_2")], settings=_settings(video_root="/node2/videos"))
    assert merge_shards([a, d], out=tmp_path / "out_d")[0].n_rows == 3
    # the same folder named twice is one folder, not a duplicate
    with pytest.raises(ExplainError, match="1 of 3 questions have no result"):
        merge_shards([a, a])


def test_merge_refuses_results_of_unknown_questions(tmp_path):
    a = _shard_folder(tmp_path, "a", [_row("q1"), _row("q/2"), _row("q_2"), _row("stray")])
    with pytest.raises(ExplainError, match="not in questions config 'toy'.*stray"):
        assemble(work_dir_for(a, _settings().config), tmp_path / "out")


def test_merge_without_work_dirs_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExplainError, match=f"no explain work directories.*{WORK_DIRNAME}"):
        merge_shards([tmp_path / "empty"])
    with pytest.raises(ExplainError, match="does not exist"):
        merge_shards([tmp_path / "nope"])


def test_merge_cli_reports_and_fails_cleanly(tmp_path, capsys):
    from vqa_shap.cli import main

    a = _shard_folder(tmp_path, "a", [_row("q1")])
    assert main(["merge", str(a)]) == 2
    assert "have no result yet" in capsys.readouterr().err
    assert main(["merge", str(a), "--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert "tiny-random-llava_onevision__toy: 1 rows (0 errors, 2 questions missing)" in out
    settings = json.loads((a / WORK_DIRNAME / _settings().config / SETTINGS_FILE).read_text())
    assert settings["qids"] == ["q1", "q/2", "q_2"] and os.path.isdir(a / _settings().config)


def test_load_fresh_never_returns_another_folders_rows(tmp_path):
    """datasets caches local folders by folder name + config: two same-named folders with
    same-sized files would share a cache entry. load_fresh must read each folder's own rows."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.schema.arrow import attribution_features

    for name, qid in (("a", "q1"), ("b", "q2")):
        hub.write_config(tmp_path / name / "out", "cfg", [_row(qid)], features=attribution_features(),
                         kind="attributions")
    assert load_fresh(tmp_path / "a" / "out", "cfg")["qid"] == ["q1"]
    assert load_fresh(tmp_path / "b" / "out", "cfg")["qid"] == ["q2"]
    with pytest.raises(ExplainError, match="no config 'nope'; configs: cfg"):
        load_fresh(tmp_path / "a" / "out", "nope")
