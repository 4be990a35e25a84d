"""Interactions configs on the viewer's question pages: matched by question, model, benchmark and
variant, their values written into the site's data (the browser test draws them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers_view import CONFIGS, write_view_folders

#: the interactions config shown on CONFIGS[0]'s page of question QID, and one matching nothing
INTERACTIONS = "tiny-a__mini__topk4"
STRAY = "other__mini__modality"
QID = "mv_2"


def interaction_rows(attribution_row: dict, *, model: str | None = None) -> tuple[list[dict], np.ndarray]:
    """A top-4 interactions row of an attribution row: its first two frames and first two question
    words; pair values chosen so that every option colours the map differently."""
    from vqa_shap.interactions.record import InteractionPlayer, InteractionRecord
    from vqa_shap.schema.records import Attribution

    attr = Attribution.from_row(attribution_row)
    frames = [i for i, f in enumerate(attr.features) if f.modality == "video"][:2]
    words = [i for i, f in enumerate(attr.features) if f.modality == "question"][:2]
    players = tuple(InteractionPlayer(attr.features[i].name, (i,)) for i in frames + words)
    pairs = tuple((i, j) for i in range(4) for j in range(i + 1, 4))
    k = attr.n_options
    values = np.array([[(p + 1) * (-1) ** (p + c) / (c + 1) for c in range(k)] for p in range(len(pairs))])
    record = InteractionRecord(
        qid=attr.qid, benchmark=attr.benchmark, task=attr.task, variant=attr.variant, model=model or attr.model,
        loader=attr.loader, protocol=attr.protocol, features=attr.features, players=players, pairs=pairs,
        interactions=values, main=np.zeros((4, k)), answer=attr.answer, prediction=attr.prediction, index="k-SII",
        players_kind="top-k", estimator="exact", budget=16, evaluations=16, seed=0)
    return [record.to_row()], values


def write_interactions(folders: dict) -> np.ndarray:
    from vqa_shap.hub import folder as hub
    from vqa_shap.interactions.record import interaction_features

    row = next(r for r in folders["rows"][CONFIGS[0]] if r["qid"] == QID)
    rows, values = interaction_rows(row)
    folder = folders["attributions"].parent / "interactions"
    hub.write_config(folder, INTERACTIONS, rows, features=interaction_features(), kind="interactions")
    stray, _ = interaction_rows(row, model="other")
    hub.write_config(folder, STRAY, stray, features=interaction_features(), kind="interactions")
    return values


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import contextlib
    import io

    from vqa_shap.cli import main

    root = tmp_path_factory.mktemp("view_interactions")
    folders = write_view_folders(root)
    values = write_interactions(folders)
    out = root / "site"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["view", str(folders["attributions"]), "--questions", str(folders["questions"]), "--video-root",
                     str(folders["videos"]), "--interactions", str(root / "interactions"), "--out", str(out),
                     "--no-progress", "--bootstrap", "0"]) == 0
    return {"out": out, "values": values, "printed": printed.getvalue(), "folders": folders}


def test_interactions_are_written_into_the_question_detail(site):
    from test_view import read_data

    out: Path = site["out"]
    names = [c["name"] for c in read_data(out / "data" / "site.js")["configs"]]
    assert names == list(CONFIGS)  # interactions configs are not configs of the index
    assert f"interactions config(s) ['{INTERACTIONS}', '{STRAY}'] shown" not in site["printed"]
    assert f"interactions config(s) ['{INTERACTIONS}'] shown on the question pages; ['{STRAY}'] match no" in site["printed"]
    details = {d["qid"]: d for d in read_data(out / "data" / CONFIGS[0] / "chunk-0.js")}
    (block,) = details[QID]["interactions"]
    assert block["config"] == INTERACTIONS and block["index"] == "k-SII" and block["kind"] == "top-k"
    assert [p[1] for p in block["players"]] == ["v", "v", "q", "q"]
    assert block["players"][2][0] == details[QID]["features"][next(
        i for i, f in enumerate(details[QID]["features"]) if f[1] == "q")][0]
    assert block["pairs"] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    np.testing.assert_allclose(block["values"], site["values"], rtol=1e-4)
    assert all("interactions" not in d for q, d in details.items() if q != QID)
    other = {d["qid"]: d for d in read_data(out / "data" / CONFIGS[1] / "chunk-0.js")}
    assert "interactions" not in other[QID]  # another model's config: not matched


def test_a_folder_that_is_not_interactions_is_a_clear_error(site, tmp_path, capsys):
    from vqa_shap.cli import main

    folders = site["folders"]
    assert main(["view", str(folders["attributions"]), "--interactions", str(folders["attributions"]),
                 "--out", str(tmp_path / "site"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an interactions folder (configs without the players, pairs" in err
    assert not (tmp_path / "site").exists()


def test_match_uses_the_variant_not_only_the_qid():
    from vqa_shap.interactions.record import InteractionPlayer, InteractionRecord
    from vqa_shap.schema.records import Attribution, Feature
    from vqa_shap.view.interactions import match

    feats = (Feature("frame_0", "video"), Feature("cup", "question"))
    common = dict(qid="q", benchmark="b", task="t", model="m", loader="l", protocol="p", answer=0)
    attrs = {"m__b": [Attribution(variant="original", features=feats, shapley=[[1.0], [2.0]], **common)],
             "m__b_hard_1": [Attribution(variant="hard_1", features=feats, shapley=[[1.0], [2.0]], **common)]}
    record = InteractionRecord(variant="hard_1", features=feats, players=(InteractionPlayer("frame_0", (0,)),
                               InteractionPlayer("cup", (1,))), pairs=((0, 1),), interactions=np.array([[0.5]]),
                               index="k-SII", players_kind="top-k", **common)
    errored = InteractionRecord(variant="original", error="boom", **common)
    shown, unmatched = match({"inter": [record], "bad": [errored]}, attrs)
    assert list(shown) == ["m__b_hard_1"] and shown["m__b_hard_1"]["q"][0]["values"] == [[0.5]]
    assert shown["m__b_hard_1"]["q"][0]["players"] == [["frame_0", "v"], ["cup", "q"]]
    assert unmatched == []  # the error row matched its question; it just has nothing to draw
