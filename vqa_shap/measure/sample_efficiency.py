"""Estimator efficiency on trained games too large to enumerate: per-sample variance × modelled cost.

For an unbiased estimator built from independent sampling units, ``error² = Σ_i Var_i / units``, so
two such estimators are compared exactly by ``(Σ_i Var_i per unit) × (compute per unit)``: the
compute each needs for the same expected error. This module measures, on one question of a trained
model, the per-player variance of the target option's marginals over permutation paths (the
samples of ``permutation``, i.e. shap) and over text-flip sets (the extra samples of
``text_flips``), and the modelled compute of a path and of a flip set in one request
(:data:`~vqa_shap.measure.estimators.MEASURED_COST`); it predicts the compute ratio of ``text_flips``
(plain paths, ``text_draws`` flip sets per path) against ``permutation`` with a bootstrap CI over
paths and flip sets. It needs no reference values, and every coalition is memoised
(:class:`~vqa_shap.measure.model_games.EvaluationMemo`), so a re-run scores nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from vqa_shap.measure.doc_tables import markers

__all__ = ["QuestionSamples", "measure_question", "compute_ratio", "allocation_gain", "format_table", "DOC_START", "DOC_END"]

DOC_START, DOC_END = markers("trained-table")
#: seeds of the measured paths (``permutation``'s own orders) and of the flip sets
PATH_SEEDS = (1_000_001, 1_000_002)
FLIP_SEED = 5
_BOOTSTRAP = 1000


@dataclass(frozen=True)
class QuestionSamples:
    """The target option's marginals on one question: ``paths`` ``[P][F]`` (forward and backward
    averaged, one row per path), ``flips`` ``[M][T]`` (one row per antithetic flip set, T text
    players), the modelled cost (ms) of one path and one flip set within a request, and the game."""

    key: str
    description: str
    n_players: int
    n_video: int
    target_output: int
    cost_path: float
    cost_flip_set: float
    paths: tuple
    flips: tuple


def measure_question(memo, n_video: int, key: str, description: str, n_paths: int, n_flip_sets: int) -> QuestionSamples:
    """Score ``n_paths`` permutation paths (half from each of :data:`PATH_SEEDS`) and ``n_flip_sets``
    antithetic flip sets (q uniform) through ``memo``; return their target-option marginals."""
    from vqa_shap.measure.estimators import MEASURED_COST
    from vqa_shap.estimators.permutation import PermutationEstimator, path_marginals, path_masks
    from vqa_shap.estimators.text_flips import flip_marginals, flip_masks
    from vqa_shap.game import Game

    n = memo.n_players
    video = np.arange(n) < n_video
    text = np.flatnonzero(~video)
    dummy = Game(lambda masks: None, n)
    perms = np.concatenate([np.concatenate(list(PermutationEstimator()._orders(dummy, n_paths // 2, seed, n_paths)))
                            for seed in PATH_SEEDS])
    masks = path_masks(perms)
    out = memo(masks.reshape(-1, n)).reshape(len(perms), 2 * n + 1, -1)
    memo.save()
    target = int(np.argmax(out[0, n]))                     # the option the model picks on the full input
    rng = np.random.default_rng(FLIP_SEED)
    base = rng.random((n_flip_sets, n)) < rng.random((n_flip_sets, 1))
    fmasks = flip_masks(base, text)
    fout = memo(fmasks.reshape(-1, n)).reshape(n_flip_sets, 2, len(text) + 1, -1)
    memo.save()
    cost_path = MEASURED_COST.call_cost(np.unique(masks.reshape(-1, n), axis=0), video) / len(perms)
    cost_flip = MEASURED_COST.call_cost(np.unique(fmasks.reshape(-1, n), axis=0), video) / n_flip_sets
    return QuestionSamples(key, description, n, n_video, target, float(cost_path), float(cost_flip),
                           tuple(map(tuple, path_marginals(perms, out)[:, :, target].round(8).tolist())),
                           tuple(map(tuple, flip_marginals(base, text, fout)[:, :, target].round(8).tolist())))


def _ratio(paths: np.ndarray, flips: np.ndarray, video: np.ndarray, c_path: float, c_flip: float, draws: int) -> float:
    var_path = paths.var(axis=0, ddof=1)
    var_flip = flips.var(axis=0, ddof=1)
    unit = var_path.copy()
    unit[~video] = (var_path[~video] + draws * var_flip) / (1 + draws) ** 2
    return float(var_path.sum() * c_path / (unit.sum() * (c_path + draws * c_flip)))


def compute_ratio(samples: QuestionSamples, draws: int, seed: int = 0) -> dict:
    """Predicted compute of ``permutation`` / compute of ``text_flips:text_draws=draws`` for the same
    expected error, with a 95% bootstrap CI (paths and flip sets resampled)."""
    paths, flips = np.asarray(samples.paths), np.asarray(samples.flips)
    video = np.arange(samples.n_players) < samples.n_video
    args = (samples.cost_path, samples.cost_flip_set, draws)
    rng = np.random.default_rng(seed)
    boot = [_ratio(paths[rng.integers(0, len(paths), len(paths))], flips[rng.integers(0, len(flips), len(flips))],
                   video, *args) for _ in range(_BOOTSTRAP)]
    return {"draws": draws, "ratio": _ratio(paths, flips, video, *args),
            "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def allocation_gain(variances: np.ndarray) -> float:
    """How much less variance per sample Neyman allocation over these players would leave than equal
    samples per player, at equal cost per sample: ``n Σσ² / (Σσ)²`` (1 when all vary alike; large when a
    few players carry the variance). An upper bound for any per-player allocation (the pilot is free here)."""
    sd = np.sqrt(np.asarray(variances, dtype=np.float64))
    return float(len(sd) * (sd ** 2).sum() / sd.sum() ** 2) if sd.sum() > 0 else 1.0


def summary(samples: QuestionSamples, draws_list=(1, 2, 4, 8)) -> dict:
    """Variance shares, costs and the ratios of one question (what the docs table shows)."""
    paths, flips = np.asarray(samples.paths), np.asarray(samples.flips)
    video = np.arange(samples.n_players) < samples.n_video
    var_path = paths.var(axis=0, ddof=1)
    phi = paths.mean(axis=0)
    # permutation (= shap) at the paper's 5000 evaluations: 5000 // (2F+1) paths
    n_perm = 5000 // (2 * samples.n_players + 1)
    return {"key": samples.key, "description": samples.description, "n_players": samples.n_players,
            "n_video": samples.n_video, "paths": len(paths), "flip_sets": len(flips),
            "text_variance_share": float(var_path[~video].sum() / var_path.sum()),
            "cost_path_ms": samples.cost_path, "cost_flip_set_ms": samples.cost_flip_set,
            "permutation_error_at_5000": float(np.sqrt(var_path.sum() / n_perm) / np.linalg.norm(phi)),
            "allocation_gain_video": allocation_gain(var_path[video]),
            "allocation_gain_text": allocation_gain(var_path[~video]),
            "ratios": [compute_ratio(samples, d) for d in draws_list]}


def format_table(rows: list[dict]) -> str:
    """Markdown table of :func:`summary` rows."""
    draws = [r["draws"] for r in rows[0]["ratios"]] if rows else []
    out = ["| question | F (video) | paths / flip sets | text share of the variance | ms per path / flip set | "
           "shap@5000 error (predicted) | per-player allocation, at most (video / text) | "
           + " | ".join(f"`text_flips:text_draws={d}`" for d in draws) + " |",
           "|---" * (7 + len(draws)) + "|"]
    for r in rows:
        cells = [f"{x['ratio']:.2f}× ({x['ci'][0]:.2f}–{x['ci'][1]:.2f})" for x in r["ratios"]]
        out.append(f"| {r['description']} | {r['n_players']} ({r['n_video']}) | {r['paths']} / {r['flip_sets']} | "
                   f"{r['text_variance_share']:.0%} | {r['cost_path_ms'] / 1000:.2f} s / {r['cost_flip_set_ms'] / 1000:.2f} s | "
                   f"{r['permutation_error_at_5000']:.2f} | "
                   f"{r['allocation_gain_video']:.1f}× / {r['allocation_gain_text']:.1f}× | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def save_json(samples: list[QuestionSamples], path: str, command: str, meta: dict) -> None:
    """The samples (so the table and any other statistic can be recomputed) and their summaries."""
    data = {"command": command, "meta": meta, "questions": [asdict(s) for s in samples],
            "summary": [summary(s) for s in samples]}
    with open(path, "w") as fh:
        json.dump(data, fh)
        fh.write("\n")


def load_samples(path: str) -> tuple[list[QuestionSamples], dict]:
    with open(path) as fh:
        data = json.load(fh)
    samples = [QuestionSamples(**{k: tuple(map(tuple, v)) if k in ("paths", "flips") else v for k, v in q.items()})
               for q in data["questions"]]
    return samples, data
