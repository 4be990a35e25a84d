"""The paper's remaining figures: numbers in their tables checked against hand-computed values, the
published per-question metrics, and the report CLI end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.analysis import paper_tables as T
from vqa_shap.analysis.paper_figures import draw_paper_figures
from vqa_shap.schema.records import Attribution, Feature

MODEL = "org/model"


def row(qid, values, *, variant="original", n_options=3, prediction=0, budget=100, model=MODEL,
        modalities=("video", "video", "question", "answer"), names=None, bench="egoschema", error=None,
        estimator="permutation"):
    """An attribution whose ground-truth column (answer 0) is ``values``; other columns random."""
    names = names or [f"frame_{i}" if m == "video" else f"w{i}" for i, m in enumerate(modalities)]
    common = dict(qid=qid, benchmark=bench, task="t", variant=variant, model=model, loader="l",
                  protocol="pollard2025", answer=0, estimator=estimator, budget=budget)
    if error:
        return Attribution(features=(), shapley=[], error=error, **common)
    feats = [Feature(n, m, option=0 if m == "answer" else -1) for n, m in zip(names, modalities)]
    phi = np.random.default_rng(len(qid)).normal(size=(len(feats), n_options))
    phi[:, 0] = values
    return Attribution(features=feats, shapley=phi, prediction=prediction, **common)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def png_colours(path: Path) -> int:
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        return len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0))


# ------------------------------------------------------------------------------ answer replacement

# ground-truth values per variant (V, V, Q, A) and the MC / PF they give by hand
VARIANTS = {
    "original": ([1, 1, 2, 0], 3, {"mc_v": .5, "mc_q": .5, "mc_a": 0, "pf_v": 1 / 3, "pf_q": 2 / 3, "pf_a": 0}),
    "easy": ([2, -2, 0, 4], 3, {"mc_v": .5, "mc_q": 0, "mc_a": .5, "pf_v": 1 / 3, "pf_q": 0, "pf_a": 2 / 3}),
    "hard_5": ([1, -1, 1, 1], 8, {"mc_v": .5, "mc_q": .25, "mc_a": .25, "pf_v": 1 / 3, "pf_q": 1 / 3, "pf_a": 1 / 3}),
    "hard_10": ([0, 3, 1, 2], 13, {"mc_v": .5, "mc_q": 1 / 6, "mc_a": 1 / 3, "pf_v": 1 / 3, "pf_q": 2 / 9, "pf_a": 4 / 9}),
}
#: correct predictions out of 4 questions per variant
CORRECT = {"original": 2, "easy": 4, "hard_5": 1, "hard_10": 0}


def variant_set(model=MODEL) -> dict[str, list[Attribution]]:
    out = {}
    for variant, (values, k, _) in VARIANTS.items():
        out[f"{model.split('/')[-1]}__ego_{variant}"] = [
            row(f"q{i}", values, variant=variant, n_options=k, prediction=0 if i < CORRECT[variant] else 1, model=model)
            for i in range(4)]
    return out


def test_answer_replacement_rows_are_the_hand_computed_metrics_in_option_order():
    attrs = variant_set()
    attrs["other__ego"] = [row("q0", [1, 1, 1, 1], model="x/other")]  # one variant only: no study
    # another estimator at a larger budget is another study (of one variant: none), not this one's hard_5
    attrs["model__ego_hard_5_kernel"] = [row("q0", [9, 0, 0, 1], variant="hard_5", n_options=8, estimator="kernel",
                                             budget=10_000)]
    infos = [T.run_info(c, a) for c, a in attrs.items()]
    rows = T.answer_replacement(attrs, infos, bootstrap=100)
    assert [r.variant for r in rows] == ["easy", "original", "hard_5", "hard_10"]
    assert {r.estimator for r in rows} == {"permutation"} and rows[2].config == "model__ego_hard_5"
    assert [r.n_options for r in rows] == [3, 3, 8, 13]
    for r in rows:
        for key, expected in VARIANTS[r.variant][2].items():
            assert r.values[key] == pytest.approx(expected, abs=1e-12), (r.variant, key)
            assert r.ci[key] == pytest.approx((expected, expected), abs=1e-12)  # identical questions
        assert r.accuracy == CORRECT[r.variant] / 4 and r.n_questions == 4
        lo, hi = r.ci["accuracy"]
        assert lo <= r.accuracy <= hi


def test_answer_replacement_table_and_figure(tmp_path):
    from vqa_shap.analysis.metrics import subset_metrics

    attrs = variant_set()
    attrs[next(iter(attrs))].append(row("bad", [], error="video missing"))
    result = draw_paper_figures(attrs, tmp_path, bootstrap=50)
    table = read_csv(tmp_path / "answer_replacement.csv")
    assert [r["variant"] for r in table] == ["easy", "original", "hard_5", "hard_10"]
    for r in table:
        config = r["config"]
        # the plotted numbers are the repo's metrics of that config (ground-truth signal)
        gt = subset_metrics(attrs[config], bootstrap=0)[0]
        for key in T.REPLACEMENT_KEYS:
            assert float(r[key]) == pytest.approx(gt.values[key], abs=1e-12)
            assert float(r[key]) == pytest.approx(VARIANTS[r["variant"]][2][key], abs=1e-12)
        assert float(r["accuracy"]) == CORRECT[r["variant"]] / 4
        assert int(r["n_errors"]) == (1 if config.endswith("original") else 0)
    md = (tmp_path / "answer_replacement.md").read_text().splitlines()
    assert len(md) == 2 + 4 and md[2].startswith(f"| {MODEL} | egoschema | permutation | easy | model__ego_easy | 3 | 4 | 0 | 1.0000 |")
    assert result.answer_replacement == (tmp_path / "answer_replacement__org_model__egoschema__permutation.png",)
    assert png_colours(result.answer_replacement[0]) > 5


@pytest.mark.parametrize("bench", ["egoschema", "mvbench"])
def test_answer_replacement_equals_the_papers_published_metrics(pollard_dir, bench):
    """On the paper's own Shapley tables (FrozenBiLM), a variant's row is the mean of the published
    per-question Ground Truth PF/MC rows."""
    import dataclasses

    from test_metrics import imported, published

    attrs = list(imported(pollard_dir, "frozenbilm", bench))
    easy = [dataclasses.replace(a, variant="easy") for a in attrs]  # a second variant, so the study is drawn
    groups = {"fb__orig": attrs, "fb__easy": easy}
    rows = T.answer_replacement(groups, [T.run_info(c, a) for c, a in groups.items()], bootstrap=0)
    theirs = published(pollard_dir, "frozenbilm", bench).xs("Ground Truth", level=1)
    original = next(r for r in rows if r.variant == "original")
    for group, name in (("pf", "Per-Feature Contribution"), ("mc", "Modality Contribution")):
        for k, label in zip("vqa", "VQA"):
            assert original.values[f"{group}_{k}"] == pytest.approx(theirs[(name, label)].mean(), abs=1e-9)


# ------------------------------------------------------------------------------------------ words


def test_normalise_word():
    assert T.normalise_word("'Hello'") == "hello"
    assert T.normalise_word("Dish") == "dish"
    assert T.normalise_word("don't") == "don't"
    for excluded in ("C", "c", "C's", "c's", "?", ".", "'", "-"):
        assert T.normalise_word(excluded) is None, excluded


def test_word_table_totals_by_hand(tmp_path):
    names = ["frame_0", "What", "C", "c's", "?", "Dish", "dish"]
    mods = ["video", "question", "answer", "answer", "question", "answer", "answer"]
    # max |phi| of the ground-truth column is 2, so psi = phi / 2
    q1 = row("q1", [2, 1, -2, 1, 0.5, 0.5, -1], names=names, modalities=mods)
    q2 = row("q2", [-4, 2, 0, 0, 0, 1, 0], names=names, modalities=mods)  # psi = phi / 4
    table = {r.word: r for r in T.word_table([q1, q2, row("q3", [], error="boom")])}
    assert set(table) == {"what", "dish"}  # frames, "c", "c's" and punctuation left out
    assert table["dish"].count == 4
    assert table["dish"].total_abs == pytest.approx(0.25 + 0.5 + 0.25 + 0)
    assert table["dish"].mean_abs == pytest.approx(1.0 / 4)
    assert table["dish"].mean == pytest.approx((0.25 - 0.5 + 0.25) / 4)
    assert table["what"].total_abs == pytest.approx(0.5 + 0.5) and table["what"].count == 2
    assert [r.word for r in T.word_table([q1, q2])] == ["dish", "what"]  # 1.0 both: ties by word
    assert [r.word for r in T.word_table([q1, q2], min_count=3)] == ["dish"]
    result = draw_paper_figures({"m__ego": [q1, q2]}, tmp_path, bootstrap=0)
    written = read_csv(tmp_path / "words.csv")
    assert [(r["word"], int(r["count"]), float(r["total_abs"])) for r in written] == [("dish", 4, 1.0), ("what", 2, 1.0)]
    assert written[0]["config"] == "m__ego" and written[0]["model"] == MODEL
    q1_more = row("q1", [2, 1, -2, 1, 0.5, 0.5, -1.5], names=names, modalities=mods)  # dish: +0.25 in total
    assert [r.word for r in T.word_table([q1_more, q2])] == ["dish", "what"]
    assert [r.word for r in T.word_table([q1, q2, q2])] == ["what", "dish"]  # what: 1.5 > dish: 1.25
    assert "| dish | 4 | 0.2500 | 1.0000 | 0.0000 |" in (tmp_path / "words__m__ego.md").read_text()
    assert png_colours(result.words[0]) > 5


# ---------------------------------------------------------------------------------------- heat map


def test_heatmap_aligns_frames_and_text_players(tmp_path):
    a = row("a", [1, -2, 4, 2, 0], modalities=("video", "video", "video", "question", "answer"))
    text = ("question",) * 24 + ("answer",)
    b = row("b", np.arange(27) - 13.0, modalities=("video", "video") + text)
    heat = T.heatmap_matrix([a, row("err", [], error="x"), b])
    assert heat.values.shape == (2, 3 + 20) and heat.n_video == 3 and heat.qids == ("a", "b")
    assert heat.columns[:3] == ("frame_0", "frame_1", "frame_2") and heat.columns[3] == "t1" and heat.columns[-1] == "t20"
    np.testing.assert_allclose(heat.values[0, :5], [0.25, -0.5, 1.0, 0.5, 0.0])
    assert np.isnan(heat.values[0, 5:]).all()
    np.testing.assert_allclose(heat.values[1, :2], [-1.0, -12 / 13])
    assert np.isnan(heat.values[1, 2])  # b has two frames: column 3 stays empty
    np.testing.assert_allclose(heat.values[1, 3:], (np.arange(2, 22) - 13.0) / 13)  # the first 20 text players
    assert T.heatmap_matrix([a, b], max_rows=1).values.shape == (1, 23)
    from vqa_shap.analysis.paper_figures import plot_heatmap

    assert png_colours(plot_heatmap(heat, tmp_path / "h.png", title="t")) > 5


# ------------------------------------------------------------------------------------- convergence


def test_convergence_errors_by_hand(tmp_path):
    mods = ("video", "question", "answer")
    ref = [row("q1", [3, 4, 0], modalities=mods, budget=1000), row("q2", [1, 0, 0], modalities=mods, budget=1000),
           row("q3", [1, 1, 1], modalities=mods, budget=1000)]
    b100 = [row("q1", [3, 4, 1], modalities=mods), row("q2", [1.5, 0, 0], modalities=mods),
            row("q3", [1, 1, 1], modalities=mods, names=["frame_0", "x", "y"]),  # other players: skipped
            row("q4", [1, 1, 1], modalities=mods)]  # not in the reference: skipped
    b10 = [row("q1", [0, 4, 0], modalities=mods, budget=10), row("q2", [1, 0, 0], modalities=mods, budget=10),
           row("q3", [], error="x", budget=10)]
    other = [row("q1", [9, 9, 9], modalities=mods, budget=10, estimator="kernel")]  # another estimator: own series
    attrs = {"m__b1000": ref, "m__b100": b100, "m__b10": b10, "m__kernel": other}
    result = draw_paper_figures(attrs, tmp_path, bootstrap=200)
    table = {r["config"]: r for r in read_csv(tmp_path / "convergence.csv")}
    assert set(table) == {"m__b100", "m__b10"}
    r100, r10 = table["m__b100"], table["m__b10"]
    assert (r100["reference"], int(r100["reference_budget"]), int(r100["budget"])) == ("m__b1000", 1000, 100)
    assert (int(r100["n_questions"]), int(r100["n_skipped"])) == (2, 2)
    assert float(r100["rel_error"]) == pytest.approx((1 / 5 + 0.5) / 2)
    assert float(r100["mse"]) == pytest.approx((1 / 3 + 0.25 / 3) / 2)
    assert 0.2 - 1e-12 <= float(r100["rel_error_lo"]) <= float(r100["rel_error"]) <= float(r100["rel_error_hi"]) <= 0.5 + 1e-12
    assert float(r10["rel_error"]) == pytest.approx((3 / 5 + 0) / 2) and int(r10["n_skipped"]) == 1
    assert float(r10["mse"]) == pytest.approx((9 / 3 + 0) / 2)
    assert png_colours(result.convergence) > 5
    assert "## Convergence" in "\n".join(result.index)


def test_convergence_series_from_card_budgets_and_ambiguous_runs():
    a = [row("q", [1, 2], modalities=("video", "question"), budget=0)]  # rows without a budget: the card's
    infos = [T.run_info("x_big", a, {"budget": 512, "estimator": "auto"}),
             T.run_info("x_small", a, {"budget": 64, "estimator": "auto"}),
             T.run_info("y_small", a, {"budget": 64, "estimator": "auto"})]
    found, notes = T.series(infos)
    assert [[i.config for i in s] for s in found] == [["x_small", "x_big"]]
    assert len(notes) == 1 and notes[0].startswith("y_small: same run and budget (64) as x_small")
    assert T.run_info("r", [row("q", [1, 2], modalities=("video", "question"), estimator="auto/kernel")]).estimator == "auto"
    assert T.series([infos[0]])[0] == []
    raised = [row("q", [1, 2], modalities=("video", "question"), budget=37)]  # explain raised the card's 16
    assert T.run_info("r", raised, {"budget": 16}).budget == 37


# ---------------------------------------------------------------------------------- report, end to end


def test_report_cli_draws_the_paper_figures(tmp_path, capsys):
    from vqa_shap.hub import folder as hub
    from vqa_shap.cli import main
    from vqa_shap.schema.arrow import attribution_features

    folder = tmp_path / "attributions"
    configs = dict(variant_set())
    configs["model__ego_b10"] = [row(f"q{i}", VARIANTS["original"][0], budget=10) for i in range(4)]
    for config, rows in configs.items():
        budget = rows[0].budget
        hub.write_config(folder, config, [a.to_row() for a in rows], features=attribution_features(),
                         kind="attributions", card_vars={"model": MODEL, "budget": budget, "estimator": "permutation"})
    out = tmp_path / "report"
    assert main(["report", str(folder), "--out", str(out), "--bootstrap", "20", "--max-questions", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "paper figures: 1 answer replacement, 5 words, 5 heat map(s), a convergence check" in printed
    assert "model__ego_b10: answer replacement uses model__ego_original" in printed
    index = (out / "index.md").read_text()
    for name in ("answer_replacement__org_model__egoschema__permutation.png", "words__model__ego_easy.png",
                 "heatmap__model__ego_hard_10.png", "convergence.png", "answer_replacement.csv"):
        assert f"]({name})" in index and (out / name).is_file()
    conv = read_csv(out / "convergence.csv")
    # the b10 run equals the original's ground-truth column: zero error
    assert [(r["config"], float(r["rel_error"])) for r in conv] == [("model__ego_b10", 0.0)]


def test_view_shows_the_report_figures_and_tables(tmp_path, capsys):
    """``vqa-shap view --report`` copies the report's top-level figures and CSV tables into the site."""
    from helpers_view import write_view_folders
    from test_view import read_data

    from vqa_shap.cli import main

    folders = write_view_folders(tmp_path / "data")
    report = tmp_path / "report"
    draw_paper_figures(variant_set(), report, bootstrap=0)
    site = tmp_path / "site"
    assert main(["view", str(folders["attributions"]), "--report", str(report), "--out", str(site),
                 "--bootstrap", "0", "--no-progress"]) == 0
    assert "9 report figure(s), 2 report table(s)" in capsys.readouterr().out  # 1 + 4 words + 4 heat maps
    data = read_data(site / "data" / "site.js")
    assert data["report_tables"] == ["report/answer_replacement.csv", "report/words.csv"]
    assert "report/answer_replacement__org_model__egoschema__permutation.png" in data["reports"]
    for rel in data["reports"] + data["report_tables"]:
        assert (site / rel).read_bytes() == (report / Path(rel).name).read_bytes()
