"""``vqa-shap interactions`` end to end with the demo model on synthetic questions: load_dataset reads the
config back, resume recomputes nothing, a missing video is an error row, top-k from an attributions
config, bad input exits 2 with one line."""

from __future__ import annotations

import json
import shutil

import datasets
import numpy as np
import pytest

from vqa_shap.cli import main
from vqa_shap.interactions.record import INTERACTION_COLUMNS, InteractionRecord

FRAMES = 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """3 synthetic questions (the last one's video deleted) in a Hub-style questions folder."""
    from vqa_shap.builders.shapes import generate_source

    root = tmp_path_factory.mktemp("interactions_cli")
    source = generate_source(root / "src", 3, seed=7)
    assert main(["build", "synthetic", str(source), "--out", str(root / "questions")]) == 0
    videos = sorted((source / "videos").glob("*.mp4"))
    videos[-1].unlink()
    return root, source, videos[-1].stem


def _common(root, source, out):
    return [str(root / "questions"), "--config", "synthetic", "--model", "demo", "--video-root", str(source),
            "--out", str(out), "--frames", str(FRAMES), "--no-progress"]


def test_modality_config_loads_back_resumes_and_keeps_the_error_row(workspace, capsys):
    root, source, missing = workspace
    out = root / "inter"
    assert main(["interactions", *_common(root, source, out)]) == 0
    config = "demo__synthetic__modality"
    rows = datasets.load_dataset(str(out), name=config, split="test", download_mode="force_redownload")
    assert rows.column_names == list(INTERACTION_COLUMNS) and len(rows) == 3
    by_qid = {r["qid"]: InteractionRecord.from_row(r) for r in rows}
    assert by_qid[missing].error and by_qid[missing].interactions.size == 0
    for qid, rec in by_qid.items():
        if qid == missing:
            continue
        assert rec.error is None and [p.name for p in rec.players] == ["video", "question", "answer"]
        assert rec.pairs == ((0, 1), (0, 2), (1, 2)) and rec.interactions.shape == (3, 4)
        assert rec.estimator == "exact" and rec.evaluations == 8 and rec.index == "k-SII"
        total = rec.main.sum(0) + rec.interactions.sum(0)
        np.testing.assert_allclose(total, np.subtract(rec.value_full, rec.value_empty), atol=1e-9)
        video = set(rec.players[0].features)
        assert video == {i for i, f in enumerate(rec.features) if f.modality == "video"} and len(video) == FRAMES
    card = (out / "README.md").read_text()
    assert "k-SII" in card and f"| `{config}` | `demo` | llava_onevision | modality |  | exact | 8 | 0 |" in card
    capsys.readouterr()
    assert main(["interactions", *_common(root, source, out), "--overwrite"]) == 0
    assert "0 computed now, 3 resumed" in capsys.readouterr().out


def test_top_k_ranked_by_an_attributions_config(workspace, capsys):
    root, source, missing = workspace
    attributions = root / "attributions"
    assert main(["explain", str(root / "questions"), "--config", "synthetic", "--model", "demo", "--video-root",
                 str(source), "--out", str(attributions), "--frames", str(FRAMES), "--budget", "64",
                 "--no-progress"]) == 0
    out = root / "inter_top"
    assert main(["interactions", *_common(root, source, out), "--players", "top-k", "-k", "5", "--budget", "32",
                 "--attributions", str(attributions)]) == 0
    rows = datasets.load_dataset(str(out), name="demo__synthetic__top5", split="test", download_mode="force_redownload")
    phi = {r["qid"]: np.asarray(r["shapley"]) for r in datasets.load_dataset(
        str(attributions), name="demo__synthetic", split="test", download_mode="force_redownload") if not r["error"]}
    assert set(phi) == {r["qid"] for r in rows if not r["error"]} and len(phi) == 2
    for row in rows:
        rec = InteractionRecord.from_row(row)
        if rec.qid == missing:
            assert "no row" not in rec.error  # the explain error row is reported as such
            continue
        chosen = sorted(i for p in rec.players for i in p.features)
        magnitude = np.abs(phi[rec.qid][:, rec.answer])
        assert magnitude[chosen].min() >= np.delete(magnitude, chosen).max()  # the 5 largest |phi|
        assert rec.estimator == "exact" and rec.phi_source == "attributions" and len(rec.pairs) == 10
    settings = json.loads(next((out / ".work").glob("*/settings.json")).read_text())
    assert json.loads(settings["extra"])["k"] == 5


def test_a_changed_setting_is_refused_on_resume(workspace, capsys):
    root, source, _ = workspace
    out = root / "inter_resume"
    shutil.copytree(root / "inter", out)
    code = main(["interactions", *_common(root, source, out), "--overwrite", "--frames", "3"])
    assert code == 2 and "other settings" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["-k", "1"], "argument -k: must be between 2"),
    (["--approximator", "Nope"], "unknown approximator 'Nope'"),
    (["--attributions", "{root}"], "add --players top-k"),
    (["--players", "pairs"], "invalid choice"),
    (["--players", "top-k", "--attributions", "{root}/questions"], "has no config 'demo__synthetic'"),
])
def test_bad_input_exits_2_with_one_line(workspace, capsys, extra, message):
    root, source, _ = workspace
    code = main(["interactions", *_common(root, source, root / "bad"), *[e.format(root=root) for e in extra]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (root / "bad").exists()
