"""Estimator benchmark: error versus modelled compute on games with known Shapley values.

Used by ``scripts/bench_estimators.py``. For every game, player count F, estimator and budget it
runs several seeds, each on a fresh :class:`~vqa_shap.game.Game` (no shared cache) and — for the
synthetic families — a distinct game instance per seed (seed s explains instance s). It records the
relative L2 error of the target output column of φ against the exact values, the evaluations and
the modelled compute (prefix + suffix :class:`~vqa_shap.game.CostModel`). Games:

* the synthetic families of :mod:`vqa_shap.measure.games` (analytic values);
* ``demo_model``: the demo model on one synthetic question with 8 frames, all 2^F coalitions
  scored once into a table (:func:`~vqa_shap.measure.model_games.demo_table_game`).

The reference is ``permutation`` (identical to shap's PermutationExplainer) at ``reference_budget``;
for every estimator the compute (and evaluations) it needs to reach the reference's mean error is
interpolated log-log on its mean error curve, with a 95% bootstrap CI over seeds (seeds resampled
jointly for the reference and the estimator: seed s is the same game instance for both).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from vqa_shap.estimators import get_estimator
from vqa_shap.estimators.base import EstimatorError
from vqa_shap.game import CostModel, Game
from vqa_shap.measure.doc_tables import markers
from vqa_shap.measure.stats import relative_l2_error

__all__ = ["BenchPoint", "BenchResult", "MEASURED_COST", "run_benchmark", "budget_to_match",
           "format_tables", "merge_results", "save_json", "load_json", "DOC_START", "DOC_END", "render_doc", "update_doc"]

#: costs measured on the realistic-proportion LLaVA-OneVision, 1 thread: prefix (system + video)
#: 55 ms, text suffix on a cached prefix 12.6 ms per coalition, full forward 96 ms
MEASURED_COST = CostModel(prefix_cost=55.0, suffix_cost=12.6, full_cost=96.0)
DOC_START, DOC_END = markers("estimators-table")
_BOOTSTRAP = 400


@dataclass(frozen=True)
class BenchPoint:
    """One (game, F, estimator, budget) cell: per-seed errors and costs, and their means."""

    game: str
    n_players: int
    estimator: str
    budget: int
    error: float
    evaluations: float
    cost: float
    prefixes: float
    seconds: float
    errors: tuple[float, ...] = ()
    costs: tuple[float, ...] = ()
    evals: tuple[float, ...] = ()


@dataclass
class BenchResult:
    points: list[BenchPoint] = field(default_factory=list)
    reference: str = "permutation"
    reference_budget: int = 5000
    seeds: int = 5
    cost_model: CostModel = MEASURED_COST
    meta: dict = field(default_factory=dict)

    def curve(self, game: str, n: int, estimator: str) -> list[BenchPoint]:
        return sorted((p for p in self.points if (p.game, p.n_players, p.estimator) == (game, n, estimator)),
                      key=lambda p: p.budget)

    def keys(self) -> list[tuple[str, int]]:
        return sorted({(p.game, p.n_players) for p in self.points})

    def names(self, game: str, n: int) -> list[str]:
        found = {p.estimator for p in self.points if (p.game, p.n_players) == (game, n)}
        return sorted(found, key=lambda e: (e != self.reference, e))

    def to_json(self) -> dict:
        return {"reference": self.reference, "reference_budget": self.reference_budget, "seeds": self.seeds,
                "cost_model": asdict(self.cost_model), "meta": self.meta,
                "points": [asdict(p) for p in self.points], "match": budget_to_match(self)}

    @classmethod
    def from_json(cls, data: dict) -> "BenchResult":
        points = [BenchPoint(**{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
                  for p in data["points"]]
        return cls(points, data["reference"], data["reference_budget"], data["seeds"],
                   CostModel(**data["cost_model"]), data.get("meta", {}))


def _load_game(name: str, n: int, seed: int, demo_frames: int):
    if name == "demo_model":
        from vqa_shap.measure.model_games import demo_table_game

        return demo_table_game(demo_frames)
    from vqa_shap.measure.games import make_game

    return make_game(name, n, seed=seed)


def run_benchmark(
    games: Sequence[str],
    sizes: Sequence[int],
    estimators: Sequence[str],
    budgets: Sequence[int],
    seeds: int = 5,
    reference: str = "permutation",
    reference_budget: int = 5000,
    cost_model: CostModel | None = None,
    batch_size: int = 4096,
    demo_frames: int = 8,
    shapiq_max_players: int = 24,
    progress: bool = True,
) -> BenchResult:
    """Run the grid (``demo_model`` ignores ``sizes``: its F is the question's); budgets an
    estimator cannot use are skipped, and shapiq's approximators above ``shapiq_max_players``
    (minutes per estimate there, and they lose). ``batch_size`` is the Game's: large, as a loader
    that takes a whole request at once (its prefix count is then per request)."""
    from tqdm.auto import tqdm

    cost_model = cost_model or MEASURED_COST
    names = list(dict.fromkeys([reference, *estimators]))
    budgets = sorted(set(budgets) | {reference_budget})
    result = BenchResult(reference=reference, reference_budget=reference_budget, seeds=seeds, cost_model=cost_model,
                         meta={"loadavg_start": list(os.getloadavg()), "batch_size": batch_size})
    instances = {}
    for g in games:
        for n in ([0] if g == "demo_model" else sizes):
            instances[(g, n)] = [_load_game(g, n, s, demo_frames) for s in range(seeds)]
    cells = [(g, n, e, b) for (g, n) in instances for e in names for b in budgets
             if (e != reference or b <= reference_budget)
             and not (e.startswith("shapiq") and instances[(g, n)][0].n_players > shapiq_max_players)]
    for game_name, n, spec, budget in tqdm(cells, desc="bench", disable=not progress):
        errors, evals, costs, prefixes = [], [], [], []
        start = time.perf_counter()
        try:
            for seed, test_game in enumerate(instances[(game_name, n)]):
                truth = test_game.shapley_values[:, test_game.target_output]
                game = Game(test_game, test_game.n_players, batch_size=batch_size,
                            video_features=list(test_game.video_players), cost_model=cost_model)
                est = get_estimator(spec).estimate(game, budget, seed)
                phi = est.values[:, test_game.target_output]
                errors.append(relative_l2_error(phi, truth))
                evals.append(float(est.evaluations))
                costs.append(float(est.cost))
                prefixes.append(est.distinct_prefixes)
        except EstimatorError:
            continue  # budget below the estimator's minimum for this F
        result.points.append(BenchPoint(
            game=game_name, n_players=test_game.n_players, estimator=spec, budget=budget,
            error=float(np.mean(errors)), evaluations=float(np.mean(evals)), cost=float(np.mean(costs)),
            prefixes=float(np.mean(prefixes)), seconds=(time.perf_counter() - start) / seeds,
            errors=tuple(errors), costs=tuple(costs), evals=tuple(evals)))
    result.meta["loadavg_end"] = list(os.getloadavg())
    return result


def _crossing(xs: Sequence[float], ys: Sequence[float], target: float) -> tuple[float | None, bool]:
    """Smallest x at which the log-log interpolated error falls to ``target``; and whether the first
    point already met it (then x is an upper bound of the need)."""
    if not len(xs):
        return None, False
    if ys[0] <= target:
        return float(xs[0]), True
    for x0, y0, x1, y1 in zip(xs, ys, xs[1:], ys[1:]):
        if y1 <= target < y0 and y0 > 0 and y1 > 0:
            t = (math.log(target) - math.log(y0)) / (math.log(y1) - math.log(y0))
            return float(math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))), False
    return None, False


def _ratio(ref: BenchPoint, curve: list[BenchPoint], pick: np.ndarray) -> tuple[float | None, float | None, bool]:
    """(compute ratio, evaluation ratio, at_most) of ``curve`` against ``ref`` on seeds ``pick``."""
    target = float(np.mean(np.asarray(ref.errors)[pick]))
    ys = [float(np.mean(np.asarray(p.errors)[pick])) for p in curve]
    cost, at_most = _crossing([float(np.mean(np.asarray(p.costs)[pick])) for p in curve], ys, target)
    evals, _ = _crossing([float(np.mean(np.asarray(p.evals)[pick])) for p in curve], ys, target)
    ref_cost, ref_evals = float(np.mean(np.asarray(ref.costs)[pick])), float(np.mean(np.asarray(ref.evals)[pick]))
    return (None if cost is None else ref_cost / cost), (None if evals is None else ref_evals / evals), at_most


def budget_to_match(result: BenchResult, seed: int = 0) -> list[dict]:
    """Per (game, F, estimator): compute and evaluations needed to reach the reference's mean error at
    ``reference_budget``, as ratios "reference / estimator" (> 1: the estimator needs less), with a
    95% bootstrap CI of the compute ratio over seeds (a resample that never reaches the target counts
    as ratio 0). ``at_most``: the smallest budget tried already reached it (the ratio is a lower bound)."""
    rows = []
    rng = np.random.default_rng(seed)
    for game, n in result.keys():
        ref = [p for p in result.curve(game, n, result.reference) if p.budget == result.reference_budget]
        if not ref:
            continue
        ref = ref[0]
        n_seeds = len(ref.errors)
        resamples = rng.integers(0, n_seeds, size=(_BOOTSTRAP, n_seeds))
        for name in result.names(game, n):
            curve = result.curve(game, n, name)
            compute, evals, at_most = _ratio(ref, curve, np.arange(n_seeds))
            boot = [(_ratio(ref, curve, pick)[0] or 0.0) for pick in resamples]
            rows.append({"game": game, "n_players": n, "estimator": name, "target_error": ref.error,
                         "compute_ratio": compute, "evaluation_ratio": evals, "at_most": at_most,
                         "compute_ratio_ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]})
    return rows


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def format_tables(result: BenchResult) -> str:
    """Markdown: per (game, F) each estimator's error at every budget (with its mean modelled compute
    in seconds), and the compute / evaluations it needs to match the reference."""
    match = {(r["game"], r["n_players"], r["estimator"]): r for r in budget_to_match(result)}
    cm = result.cost_model
    out = [f"Reference: `{result.reference}` (= shap's PermutationExplainer) at {result.reference_budget} "
           f"evaluations. Cells: mean relative L2 error of φ (target option) over {result.seeds} seeds / "
           f"mean modelled compute in s ({cm.prefix_cost:g} ms per distinct video prefix + "
           f"{cm.suffix_cost:g} ms per coalition). \"less compute\": reference compute / compute this "
           "estimator needs for the reference's error (log-log interpolation; 95% bootstrap CI over "
           "seeds; \"≥\": met at the smallest budget tried; \"–\": not reached).", ""]
    for game, n in result.keys():
        budgets = sorted({p.budget for p in result.points if (p.game, p.n_players) == (game, n)})
        ref = [p for p in result.curve(game, n, result.reference) if p.budget == result.reference_budget]
        target = f", target error {_fmt(ref[0].error)}" if ref else ""
        out.append(f"#### {game}, F = {n}{target}\n")
        out.append("| estimator | " + " | ".join(f"@{b}" for b in budgets) + " | less compute (95% CI) | fewer evals |")
        out.append("|---" * (len(budgets) + 3) + "|")
        for name in result.names(game, n):
            by_budget = {p.budget: p for p in result.curve(game, n, name)}
            cells = [f"{_fmt(by_budget[b].error)} / {by_budget[b].cost / 1000:.3g}" if b in by_budget else "–"
                     for b in budgets]
            m = match.get((game, n, name), {})
            ge = "≥ " if m.get("at_most") else ""
            ci = m.get("compute_ratio_ci") or [None, None]
            ratio = "–" if m.get("compute_ratio") is None else \
                f"{ge}{_fmt(m['compute_ratio'], 3)}× ({_fmt(ci[0], 2)}–{_fmt(ci[1], 2)})"
            evals = "–" if m.get("evaluation_ratio") is None else f"{ge}{_fmt(m['evaluation_ratio'], 3)}×"
            out.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} | {evals} |")
        out.append("")
    for i, run in enumerate(result.meta.get("runs") or [result.meta]):
        load = run.get("loadavg_start")
        if load:
            what = f"run {i + 1} ({len(run['cells'])} re-measured cells)" if "cells" in run else \
                ("run 1" if "runs" in result.meta else "")
            out.append(f"Machine load (1-min loadavg) at start / end{' of ' + what if what else ''}: "
                       f"{load[0]:.2f} / {run['loadavg_end'][0]:.2f}.")
    return "\n".join(out).rstrip() + "\n"


def merge_results(old: BenchResult, new: BenchResult) -> BenchResult:
    """``old`` with every (game, F, estimator) cell that ``new`` measured replaced by ``new``'s
    points (re-measuring some estimators without re-running the whole grid). The two runs must
    share the reference, its budget, the seeds and the cost model; each run's load is kept in
    ``meta["runs"]``."""
    same = (old.reference, old.reference_budget, old.seeds, old.cost_model) == \
        (new.reference, new.reference_budget, new.seeds, new.cost_model)
    if not same:
        raise ValueError("cannot merge estimator benchmarks with different reference, seeds or cost model")
    replaced = {(p.game, p.n_players, p.estimator) for p in new.points}
    points = [p for p in old.points if (p.game, p.n_players, p.estimator) not in replaced] + list(new.points)
    runs = old.meta.get("runs") or [{k: v for k, v in old.meta.items() if k != "runs"}]
    cells = sorted({f"{g}:{n}:{e}" for g, n, e in replaced})
    meta = {**old.meta, "runs": [*runs, {**new.meta, "cells": cells}]}
    return BenchResult(points, old.reference, old.reference_budget, old.seeds, old.cost_model, meta)


def save_json(result: BenchResult, path: str) -> None:
    with open(path, "w") as fh:
        json.dump(result.to_json(), fh, indent=1)
        fh.write("\n")


def load_json(path: str) -> BenchResult:
    with open(path) as fh:
        return BenchResult.from_json(json.load(fh))


def render_doc(doc: str, result: BenchResult) -> str:
    """``doc`` with the text between :data:`DOC_START` and :data:`DOC_END` replaced by the tables."""
    from vqa_shap.measure.doc_tables import replace_between

    return replace_between(doc, DOC_START, DOC_END, format_tables(result))


def update_doc(doc_path: str, json_path: str) -> bool:
    """Regenerate the table in ``doc_path`` from ``json_path``; True if the file changed."""
    from vqa_shap.measure.doc_tables import update_file

    return update_file(doc_path, DOC_START, DOC_END, format_tables(load_json(json_path)))
