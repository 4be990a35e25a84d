"""Estimator benchmark on games with known Shapley values (used by scripts/bench_estimators.py).

For every game family, player count F, estimator and budget it runs several seeds on a fresh
:class:`~vqa_shap.game.Game` (no shared cache) and records the relative L2 error of the target output
column of φ against the analytic values, the evaluations and the modelled compute (prefix + suffix
cost model). Everything is measured in one run, side by side with shap's own PermutationExplainer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from vqa_shap.estimators import get_estimator
from vqa_shap.estimators.base import EstimatorError
from vqa_shap.game import CostModel, Game
from vqa_shap.bench.games import make_game

__all__ = ["BenchPoint", "BenchResult", "run_benchmark", "budget_to_match", "format_summary", "format_tables", "plot"]


@dataclass(frozen=True)
class BenchPoint:
    """Mean over seeds of one (game, F, estimator, budget) cell."""

    game: str
    n_players: int
    estimator: str
    budget: int
    error: float
    error_std: float
    evaluations: float
    cost: float
    prefixes: float
    seconds: float


@dataclass
class BenchResult:
    points: list[BenchPoint] = field(default_factory=list)
    reference: str = "shap"
    reference_budget: int = 5000
    seeds: int = 5
    cost_model: CostModel = CostModel()

    def curve(self, game: str, n: int, estimator: str) -> list[BenchPoint]:
        return sorted((p for p in self.points if (p.game, p.n_players, p.estimator) == (game, n, estimator)),
                      key=lambda p: p.budget)

    def to_json(self) -> dict:
        return {
            "reference": self.reference, "reference_budget": self.reference_budget, "seeds": self.seeds,
            "cost_model": asdict(self.cost_model),
            "points": [asdict(p) for p in self.points],
            "match": budget_to_match(self),
        }


def run_benchmark(
    games: Sequence[str],
    sizes: Sequence[int],
    estimators: Sequence[str],
    budgets: Sequence[int],
    seeds: int = 5,
    reference: str = "shap",
    reference_budget: int = 5000,
    cost_model: CostModel | None = None,
    progress: bool = True,
) -> BenchResult:
    """Run the grid; returns a :class:`BenchResult` (budgets an estimator cannot use are skipped)."""
    import time

    from tqdm.auto import tqdm

    cost_model = cost_model or CostModel()
    names = list(dict.fromkeys([reference, *estimators]))
    budgets = sorted(set(budgets) | {reference_budget})
    result = BenchResult(reference=reference, reference_budget=reference_budget, seeds=seeds, cost_model=cost_model)
    cells = [(g, n, e, b) for g in games for n in sizes for e in names for b in budgets
             if e != reference or b <= reference_budget]
    for game_name, n, name, budget in tqdm(cells, desc="bench", disable=not progress):
        test_game = make_game(game_name, n, seed=0)
        truth = test_game.shapley_values[:, test_game.target_output]
        errors, evals, costs, prefixes = [], [], [], []
        start = time.perf_counter()
        try:
            for seed in range(seeds):
                game = Game(test_game, n, batch_size=64, video_features=list(test_game.video_players),
                            cost_model=cost_model)
                est = get_estimator(name).estimate(game, budget, seed)
                phi = est.values[:, test_game.target_output]
                errors.append(np.linalg.norm(phi - truth) / np.linalg.norm(truth))
                evals.append(est.evaluations)
                costs.append(est.cost)
                prefixes.append(est.distinct_prefixes)
        except EstimatorError:
            continue  # budget below the estimator's minimum for this F
        result.points.append(BenchPoint(
            game=game_name, n_players=n, estimator=name, budget=budget,
            error=float(np.mean(errors)), error_std=float(np.std(errors)),
            evaluations=float(np.mean(evals)), cost=float(np.mean(costs)), prefixes=float(np.mean(prefixes)),
            seconds=(time.perf_counter() - start) / seeds))
    return result


def _crossing(points: list[BenchPoint], target: float, axis: str) -> float | None:
    """Smallest x (evaluations or cost) at which the log-log interpolated error falls to ``target``."""
    xs = [getattr(p, axis) for p in points]
    ys = [p.error for p in points]
    if not points:
        return None
    if ys[0] <= target:
        return xs[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y1 <= target < y0 and y0 > 0 and y1 > 0:
            t = (math.log(target) - math.log(y0)) / (math.log(y1) - math.log(y0))
            return float(math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))))
    return None


#: errors below this are round-off: the estimator is exact there
EXACT = 1e-9


def budget_to_match(result: BenchResult) -> list[dict]:
    """For every game, F and estimator: the evaluations and compute needed to reach the reference's
    error at ``reference_budget`` (interpolated log-log between the budgets tried; None when not
    reached). When the reference is exact (error < :data:`EXACT`) the target is exactness and the
    first budget tried that is exact is reported. ``at_most`` marks targets already met at the
    smallest budget tried (the true need may be lower)."""
    rows = []
    keys = sorted({(p.game, p.n_players) for p in result.points})
    for game, n in keys:
        ref = [p for p in result.curve(game, n, result.reference) if p.budget == result.reference_budget]
        if not ref:
            continue
        ref = ref[0]
        exact_target = ref.error < EXACT
        target = EXACT if exact_target else ref.error
        for name in sorted({p.estimator for p in result.points if (p.game, p.n_players) == (game, n)}):
            curve = result.curve(game, n, name)
            at_most = curve[0].error <= target
            if exact_target:
                hit = next((p for p in curve if p.error <= target), None)
                evals, cost = (hit.evaluations, hit.cost) if hit else (None, None)
            elif at_most:
                evals, cost = curve[0].evaluations, curve[0].cost
            else:
                evals, cost = _crossing(curve, target, "evaluations"), _crossing(curve, target, "cost")
            rows.append({
                "game": game, "n_players": n, "estimator": name, "target_error": target,
                "exact_target": exact_target, "evaluations": evals, "cost": cost, "at_most": at_most,
                "evaluation_ratio": None if evals is None else ref.evaluations / evals,
                "compute_ratio": None if cost is None else ref.cost / cost,
            })
    return rows


def format_summary(result: BenchResult) -> str:
    """Markdown: per (game, F), how many times fewer evaluations / less compute than the reference
    each estimator needs to reach the reference's error at its budget."""
    match = budget_to_match(result)
    names = sorted({r["estimator"] for r in match}, key=lambda e: (e != result.reference, e))
    lines = [f"| game | F | target error | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for game, n in sorted({(r["game"], r["n_players"]) for r in match}):
        cells = {r["estimator"]: r for r in match if (r["game"], r["n_players"]) == (game, n)}
        target = next(iter(cells.values()))
        row = [game, str(n), "exact" if target["exact_target"] else _fmt(target["target_error"])]
        for name in names:
            r = cells.get(name)
            if r is None or r["evaluations"] is None:
                row.append("not reached")
            else:
                le = "≥ " if r["at_most"] else ""
                row.append(f"{le}{_fmt(r['evaluation_ratio'], 2)}× / {le}{_fmt(r['compute_ratio'], 2)}×")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def format_tables(result: BenchResult, games: Sequence[str] | None = None, sizes: Sequence[int] | None = None) -> str:
    """Markdown: per (game, F) the error at every budget, and the budget/compute to match the reference."""
    match = {(r["game"], r["n_players"], r["estimator"]): r for r in budget_to_match(result)}
    out = []
    keys = sorted({(p.game, p.n_players) for p in result.points})
    for game, n in keys:
        if (games and game not in games) or (sizes and n not in sizes):
            continue
        budgets = sorted({p.budget for p in result.points if (p.game, p.n_players) == (game, n)})
        names = sorted({p.estimator for p in result.points if (p.game, p.n_players) == (game, n)},
                       key=lambda e: (e != result.reference, e))
        out.append(f"#### {game}, F = {n} (relative L2 error of φ, target column, mean of {result.seeds} seeds)\n")
        out.append("| estimator | " + " | ".join(f"@{b}" for b in budgets)
                   + f" | ms / eval | evals to match {result.reference}@{result.reference_budget} "
                   + "| compute to match (ms) | fewer evals | less compute |")
        out.append("|---" * (len(budgets) + 6) + "|")
        for name in names:
            by_budget = {p.budget: p for p in result.curve(game, n, name)}
            cells = [_fmt(by_budget[b].error) if b in by_budget else "–" for b in budgets]
            curve = result.curve(game, n, name)
            per_eval = np.mean([p.cost / p.evaluations for p in curve if p.evaluations]) if curve else float("nan")
            m = match.get((game, n, name), {})
            le = "≤ " if m.get("at_most") and not m.get("exact_target") else ""
            out.append(f"| {name} | " + " | ".join(cells)
                       + f" | {_fmt(per_eval, 3)} | {le}{_fmt(m.get('evaluations'), 4)} | {le}{_fmt(m.get('cost'), 4)}"
                       + f" | {_fmt(m.get('evaluation_ratio'), 3)}× | {_fmt(m.get('compute_ratio'), 3)}× |")
        out.append("")
    return "\n".join(out)


def plot(result: BenchResult, path: str) -> None:
    """Error vs evaluations and vs compute, one panel pair per (game, F), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(p.game, p.n_players) for p in result.points})
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 3.2 * len(keys)), squeeze=False)
    names = sorted({p.estimator for p in result.points})
    for row, (game, n) in enumerate(keys):
        for col, axis in enumerate(("evaluations", "cost")):
            ax = axes[row][col]
            for name in names:
                curve = result.curve(game, n, name)
                if curve:
                    ax.plot([getattr(p, axis) for p in curve], [max(p.error, 1e-16) for p in curve], marker="o",
                            label=name, linestyle="--" if name == result.reference else "-")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{game}, F={n}")
            ax.set_xlabel("evaluations" if axis == "evaluations" else "modelled compute (ms)")
            ax.set_ylabel("relative L2 error")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_json(result: BenchResult, path: str) -> None:
    with open(path, "w") as fh:
        json.dump(result.to_json(), fh, indent=1)
