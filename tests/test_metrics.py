"""Metrics: the paper's per-question numbers (oracle), hand cases, edge cases, intervals, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vqa_shap.analysis.metrics import (GROUPS, SIGNALS, metric_keys, normalise_columns, question_metrics,
                                       question_metrics_frame, signal_weights, subset_metrics, subset_rows)
from vqa_shap.analysis.metric_math import bootstrap_ci
from vqa_shap.schema.records import Attribution, Feature

BENCHMARKS = ("egoschema", "hd-epic", "mvbench", "lvbench")
MODELS = ("frozenbilm", "internvideo")


def fixture_questions(pollard_dir, bench):
    """The fixture questions of one benchmark, built by the pollard2025 builder."""
    from vqa_shap.builders import get_builder

    return get_builder("pollard2025").build(pollard_dir).configs[bench]


def imported(pollard_dir, model, bench):
    from vqa_shap.analysis.paper_csv import import_csv_dir
    from vqa_shap.protocol import get_protocol

    questions = fixture_questions(pollard_dir, bench)
    return import_csv_dir(pollard_dir / "shapley" / model / bench, questions, get_protocol("pollard2025"),
                          model).attributions


def published(pollard_dir, model, bench) -> pd.DataFrame:
    return pd.read_csv(pollard_dir / "shapley" / model / f"{bench}_question_metrics.csv",
                       header=[0, 1], index_col=[0, 1])


def attribution(shapley, modalities, answer=0, stderr=None, prediction=None, error=None, qid="q"):
    feats = [Feature(f"f{i}", m, option=0 if m == "answer" else -1) for i, m in enumerate(modalities)]
    return Attribution(qid, "bench", "task", "original", "model", "loader", "pollard2025", feats, shapley,
                       stderr=stderr, answer=answer, prediction=prediction, error=error)


# ------------------------------------------------------------------------------------ oracle


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_metrics_of_imported_csvs_equal_the_published_per_question_metrics(pollard_dir, bench):
    """Every metric group (MC, PF, Ratio, Mean, Var) × V/Q/A × the three signals, for both models,
    equals the paper's q_uid_metrics rows to 1e-9 (paper_compat: the published Ratio_A divides by F)."""
    for model in MODELS:
        attrs = imported(pollard_dir, model, bench)
        ours = question_metrics_frame([question_metrics(a, paper_compat=True) for a in attrs])
        theirs = published(pollard_dir, model, bench)
        assert set(ours.index) == set(theirs.index)
        assert len(ours) == 3 * len(attrs) == 36
        assert set(ours.index.get_level_values(1)) == set(SIGNALS)
        theirs = theirs.loc[ours.index, ours.columns]
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-9,
                                   err_msg=f"{model} {bench}")


def test_default_ratio_a_divides_by_the_answer_features(pollard_dir):
    """The correct Ratio_A is the published (÷F) one × F / n_A, and is the hand count."""
    attrs = imported(pollard_dir, "frozenbilm", "egoschema")
    theirs = published(pollard_dir, "frozenbilm", "egoschema")
    for a in attrs:
        qm = question_metrics(a)
        answer = a.modality_mask("answer")
        psi = normalise_columns(a.shapley)
        k = a.n_options
        signals = {"Ground Truth": psi[:, a.answer],
                   "False": np.delete(psi, a.answer, axis=1).mean(axis=1),
                   "All": psi.mean(axis=1)}
        for name, s in signals.items():
            hand = np.count_nonzero(s[answer] >= 0) / np.count_nonzero(answer)
            assert qm.signal(name).ratio[2] == pytest.approx(hand, abs=1e-12)
            paper = theirs.loc[(a.qid, name), ("Ratio", "A")]
            assert qm.signal(name).ratio[2] == pytest.approx(paper * a.n_features / answer.sum(), abs=1e-9)
            assert qm.signal(name).ratio[2] > paper  # the paper's divisor F > n_A understates it
        assert k == 5


# ------------------------------------------------------------------------------- hand cases


def test_hand_computed_question():
    """V = 2 frames, Q = 1 word, A = 2 words, K = 2 options, answer 1."""
    phi = [[2.0, -1.0],
           [-1.0, 4.0],
           [0.0, -2.0],
           [1.0, 1.0],
           [-2.0, 0.0]]
    a = attribution(phi, ["video", "video", "question", "answer", "answer"], answer=1)
    # column maxima 2 and 4: ψ[:,0] = [1, -.5, 0, .5, -1], ψ[:,1] = [-.25, 1, -.5, .25, 0]
    gt = question_metrics(a).signal("Ground Truth")  # s = [-.25, 1, -.5, .25, 0]
    total = 0.25 + 1 + 0.5 + 0.25
    assert gt.mc == pytest.approx((1.25 / total, 0.5 / total, 0.25 / total))
    per = np.array([1.25 / 2, 0.5, 0.25 / 2])
    assert gt.pf == pytest.approx(tuple(per / per.sum()))
    assert gt.ratio == pytest.approx((0.5, 0.0, 1.0))  # s ≥ 0 counts 0 as non-negative
    assert gt.mean == pytest.approx((0.375, -0.5, 0.125))
    assert gt.var == pytest.approx((0.390625, 0.0, 0.015625))
    assert (gt.md, gt.pfd) == (0, 0)
    false = question_metrics(a).signal("False")  # s = ψ[:,0] = [1, -.5, 0, .5, -1]
    assert false.mc == pytest.approx((1.5 / 3, 0.0, 1.5 / 3))
    assert false.md == 0  # tie V/A → first
    assert false.ratio == pytest.approx((0.5, 1.0, 0.5))
    every = question_metrics(a).signal("All")  # s = [.375, .25, -.25, .375, -.5]
    assert every.mean == pytest.approx((0.3125, -0.25, -0.0625))
    paper = question_metrics(a, paper_compat=True).signal("Ground Truth")
    assert paper.ratio == pytest.approx((0.5, 0.0, 2 / 5))


def test_signal_weights_and_normalisation():
    w = signal_weights(4, 2)
    np.testing.assert_allclose(w[:, 0], [0, 0, 1, 0])
    np.testing.assert_allclose(w[:, 1], [1 / 3, 1 / 3, 0, 1 / 3])
    np.testing.assert_allclose(w[:, 2], [0.25] * 4)
    with pytest.raises(ValueError, match="out of range"):
        signal_weights(3, 3)
    psi = normalise_columns(np.array([[2.0, 0.0], [-4.0, 0.0]]))
    np.testing.assert_array_equal(psi, [[0.5, 0.0], [-1.0, 0.0]])  # zero column stays zero


# -------------------------------------------------------------------------------- edge cases


def test_zero_column_and_all_zero_signal():
    # GT column all zero: ψ = 0, MC/PF undefined (NaN), no dominance; other signals still defined
    a = attribution([[0.0, 1.0], [0.0, -2.0], [0.0, 0.5]], ["video", "question", "answer"], answer=0)
    qm = question_metrics(a)
    gt = qm.signal("Ground Truth")
    assert all(math.isnan(v) for v in gt.mc + gt.pf)
    assert gt.md is None and gt.pfd is None
    assert gt.ratio == (1.0, 1.0, 1.0) and gt.mean == (0.0, 0.0, 0.0)
    false = qm.signal("False")
    assert false.mc == pytest.approx((0.5 / 1.75, 1.0 / 1.75, 0.25 / 1.75))  # s = ψ[:, 1] = [.5, -1, .25]
    assert false.md == 1
    subset = subset_metrics([a, attribution([[1.0, 1.0], [1.0, 1.0], [2.0, 1.0]],
                                            ["video", "question", "answer"], qid="q2")], bootstrap=0)
    # NaN questions are left out of the means and dominance fractions
    assert subset[0].values["mc_a"] == pytest.approx(0.5)
    assert subset[0].values["md_a"] == pytest.approx(1.0)


def test_modality_with_zero_features():
    a = attribution([[1.0], [-3.0], [2.0]], ["question", "answer", "answer"])  # no video
    gt = question_metrics(a).signal("Ground Truth")  # s = [1/3, -1, 2/3]
    assert gt.mc == pytest.approx((0.0, (1 / 3) / 2, (5 / 3) / 2))
    assert gt.pf == pytest.approx((0.0, (1 / 3) / (1 / 3 + 5 / 6), (5 / 6) / (1 / 3 + 5 / 6)))
    assert math.isnan(gt.ratio[0]) and math.isnan(gt.mean[0]) and math.isnan(gt.var[0])
    assert gt.md == 2 and gt.pfd == 2


def test_error_rows_are_excluded_and_counted():
    good = attribution([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["video", "question", "answer"],
                       prediction=0, qid="a")
    wrong = attribution([[1.0, 0.0], [0.5, 1.0], [1.0, 1.0]], ["video", "question", "answer"],
                        prediction=1, qid="b")
    bad = Attribution("c", "bench", "task", "original", "model", "loader", "p", (), [], answer=0,
                      error="video missing")
    subsets = subset_metrics([good, wrong, bad], bootstrap=0)
    assert [s.n_questions for s in subsets] == [2, 2, 2]
    assert [s.n_errors for s in subsets] == [1, 1, 1]
    assert subsets[0].accuracy == pytest.approx(0.5)
    with pytest.raises(ValueError, match="video missing"):
        question_metrics(bad)
    no_pred = attribution([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["video", "question", "answer"])
    assert subset_metrics([good, no_pred], bootstrap=0)[0].accuracy is None


def test_dominance_fractions():
    v = attribution([[5.0], [1.0], [1.0]], ["video", "question", "answer"], qid="v")
    q = attribution([[1.0], [5.0], [1.0]], ["video", "question", "answer"], qid="q")
    a = attribution([[1.0], [1.0], [5.0], [5.0]], ["video", "question", "answer", "answer"], qid="a")
    gt = subset_metrics([v, q, a, a], bootstrap=0)[0].values
    assert (gt["md_v"], gt["md_q"], gt["md_a"]) == pytest.approx((0.25, 0.25, 0.5))
    assert (gt["pfd_v"], gt["pfd_q"], gt["pfd_a"]) == pytest.approx((0.25, 0.25, 0.5))


# ---------------------------------------------------------------- standard-error propagation


def test_stderr_propagation_hand_case():
    """F = 2 (one frame, one word), K = 1: φ = [4, 2], σ = [0.1, 0.2].

    ψ = φ / |φ_0| → s = [1, 0.5]; Mean_V = φ0/|φ0| is constant (se 0); Mean_Q = φ1/φ0 has
    ∂/∂φ1 = 1/4, ∂/∂φ0 = −φ1/φ0² = −1/8; MC_V = φ0/(φ0+φ1) has ∂/∂φ0 = 2/36, ∂/∂φ1 = −4/36.
    """
    a = attribution([[4.0], [2.0]], ["video", "question"], stderr=[[0.1], [0.2]])
    se = question_metrics(a).signal("Ground Truth").se
    assert se["mean"][0] == pytest.approx(0.0, abs=1e-15)
    assert se["mean"][1] == pytest.approx(math.sqrt((0.2 / 4) ** 2 + (0.1 / 8) ** 2))
    assert se["mc"][0] == pytest.approx(math.sqrt((2 / 36 * 0.1) ** 2 + (4 / 36 * 0.2) ** 2))
    assert se["mc"][1] == pytest.approx(se["mc"][0])  # MC_Q = 1 − MC_V
    # Var over one feature is 0 whatever φ is
    assert se["var"][0] == pytest.approx(0.0, abs=1e-15)
    # no answer features: MC_A = 0 exactly whatever φ is (se 0); Mean_A is undefined (se NaN)
    assert se["mc"][2] == 0.0 and math.isnan(se["mean"][2])


def _metric_vector(shapley, modalities, answer):
    qm = question_metrics(attribution(shapley, modalities, answer=answer))
    return np.array([v for sm in qm.signals for g in ("mc", "pf", "mean", "var") for v in getattr(sm, g)])


def test_stderr_propagation_matches_finite_differences():
    rng = np.random.default_rng(3)
    modalities = ["video"] * 4 + ["question"] * 3 + ["answer"] * 5
    phi = rng.normal(size=(12, 3))
    sigma = rng.uniform(0.01, 0.1, size=(12, 3))
    qm = question_metrics(attribution(phi, modalities, answer=1, stderr=sigma))
    analytic = np.array([v for sm in qm.signals for g in ("mc", "pf", "mean", "var") for v in sm.se[g]])
    base = _metric_vector(phi, modalities, 1)
    jac = np.zeros((base.size, phi.size))
    eps = 1e-6
    for n in range(phi.size):
        step = np.zeros(phi.size)
        step[n] = eps
        up = _metric_vector(phi + step.reshape(phi.shape), modalities, 1)
        down = _metric_vector(phi - step.reshape(phi.shape), modalities, 1)
        jac[:, n] = (up - down) / (2 * eps)
    numeric = np.sqrt((jac**2 * sigma.reshape(-1) ** 2).sum(axis=1))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-9)


def test_subset_stderr_combines_question_errors():
    q1 = attribution([[4.0], [2.0]], ["video", "question"], stderr=[[0.1], [0.2]], qid="1")
    q2 = attribution([[1.0], [3.0]], ["video", "question"], stderr=[[0.3], [0.1]], qid="2")
    se1 = question_metrics(q1).signal("Ground Truth").se["mc"][0]
    se2 = question_metrics(q2).signal("Ground Truth").se["mc"][0]
    sub = subset_metrics([q1, q2], bootstrap=0)[0]
    assert sub.se["mc_v"] == pytest.approx(math.sqrt(se1**2 + se2**2) / 2)
    assert subset_metrics([q1, attribution([[1.0], [3.0]], ["video", "question"])], bootstrap=0)[0].se is None


# -------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_n(pollard_dir):
    attrs = list(imported(pollard_dir, "internvideo", "mvbench"))
    small = subset_metrics(attrs, bootstrap=500, seed=1)
    large = subset_metrics(attrs * 16, bootstrap=500, seed=1)  # same spread, 16× the questions
    for s_small, s_large in zip(small, large):
        for key in ("mc_v", "mc_q", "mc_a", "pf_v", "pf_q", "pf_a", "mean_v", "ratio_q"):
            lo, hi = s_small.ci[key]
            assert lo <= s_small.values[key] <= hi
            lo2, hi2 = s_large.ci[key]
            assert lo2 <= s_large.values[key] <= hi2
            assert s_large.values[key] == pytest.approx(s_small.values[key])
            assert (hi2 - lo2) < 0.5 * (hi - lo)  # ≈ 1/4 for 16× the questions
    assert "accuracy" in small[0].ci and small[0].accuracy is not None


def test_bootstrap_ci_is_seeded_and_handles_nan():
    values = np.array([[1.0, np.nan], [2.0, 1.0], [3.0, np.nan], [4.0, 3.0]])
    a = bootstrap_ci(values, 200, seed=5)
    np.testing.assert_array_equal(a, bootstrap_ci(values, 200, seed=5))
    assert a.shape == (2, 2) and np.all(a[:, 0] <= a[:, 1])
    assert 1.0 <= a[1, 0] and a[1, 1] <= 3.0


def test_subset_rows_are_json_ready():
    import json

    a = attribution([[1.0, 0.5], [0.2, 1.0], [-1.0, 0.0]], ["video", "question", "answer"], prediction=0)
    rows = subset_rows(subset_metrics([a, a], bootstrap=10), config="c", model="m")
    assert [r["signal"] for r in rows] == list(SIGNALS)
    assert set(metric_keys()) <= set(rows[0])
    assert rows[0]["config"] == "c" and rows[0]["accuracy"] == 1.0
    json.dumps(rows, allow_nan=False)
    assert len(GROUPS) * 3 + 6 == len(metric_keys())


def test_infinite_stderr_of_an_irrelevant_value_does_not_poison_the_error():
    """A value the metric does not depend on (zero gradient) adds nothing, even when its standard
    error is infinite (estimators with one independent sample report inf); no NaN, no warning."""
    import warnings

    from vqa_shap.analysis.metrics import _propagate

    phi = np.array([[1.0, 0.5], [0.5, 2.0], [0.25, -1.0]])
    sigma = np.full_like(phi, 0.1)
    sigma[2, 1] = np.inf
    grad = np.array([[1.0, 0.0, 0.0]])  # depends on feature 0 only
    weights = np.array([1.0, 0.0])  # the ground-truth signal: column 0 only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err = _propagate(grad, phi, sigma, weights)
    # column 0's max |φ| is feature 0 itself, so s_0 = φ00/|φ00| is constant: zero error
    assert np.isfinite(err).all() and err[0] == pytest.approx(0.0, abs=1e-12)
    sigma[0, 0] = np.inf  # a value the next metric does depend on: its error is infinite
    grad2 = np.array([[0.0, 1.0, 0.0]])  # s_1 = φ10/|φ00|: depends on φ10 and φ00
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(_propagate(grad2, phi, sigma, weights)[0])
