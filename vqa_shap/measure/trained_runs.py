"""Estimators run end to end on a trained model's game, their error measured without a reference.

For an unbiased estimator ``E‖φ̂ − φ‖² = tr Cov(φ̂)``, and independent seeds estimate that without the
truth: ``‖φ̂_a − φ̂_b‖² / 2`` averaged over pairs of seeds. Divided by ``‖φ‖`` (from the pooled runs of
the largest budget, less their own variance), it is the relative error a reference would measure if it
were exact — a stored reference's own error (0.2–0.3 on these games) would otherwise add to every
figure. Each estimator runs at several budgets; the compute it needs to reach the error of
``permutation`` (shap's sampler) at its largest budget is interpolated log-log between them (a
regression-adjusted estimator's error falls faster than 1/√compute as its surrogate improves, so
ratios at equal budget would flatter it). The games are memoised
(:class:`~vqa_shap.measure.model_games.EvaluationMemo`), so a re-run scores nothing; the compute is the
Game's cost model (:data:`~vqa_shap.measure.estimators.MEASURED_COST`), the evaluations are counted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np

from vqa_shap.measure.doc_tables import markers

__all__ = ["SpecRuns", "run_specs", "summarise", "format_table", "save_json", "load_runs", "DOC_START", "DOC_END"]

DOC_START, DOC_END = markers("trained-runs-table")
BASELINE = "permutation"
_BOOTSTRAP = 1000


@dataclass(frozen=True)
class SpecRuns:
    """One estimator spec at one budget on one question: per seed, the target option's values ``[F]``,
    the evaluations and the modelled compute (ms)."""

    key: str
    description: str
    spec: str
    budget: int
    seeds: tuple
    values: tuple
    evaluations: tuple
    cost_ms: tuple


def run_specs(memo, n_video: int, key: str, description: str, specs, budgets, seeds, progress=print) -> list[SpecRuns]:
    """Run every spec at every budget and seed on the memoised game; the target option is the one the
    model picks with nothing masked."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game
    from vqa_shap.measure.estimators import MEASURED_COST

    n = memo.n_players
    target = int(np.argmax(memo(np.ones((1, n), dtype=bool))[0]))
    out = []
    for spec in specs:
        for budget in budgets:
            values, evaluations, cost = [], [], []
            for seed in seeds:
                game = Game(memo, n, video_features=n_video, cost_model=MEASURED_COST)
                estimate = get_estimator(spec).estimate(game, int(budget), int(seed))
                values.append(np.asarray(estimate.values)[:, target].round(7).tolist())
                evaluations.append(int(game.evaluations))
                cost.append(float(game.cost))
                memo.save()
            out.append(SpecRuns(key, description, spec, int(budget), tuple(int(s) for s in seeds), tuple(values),
                                tuple(evaluations), tuple(cost)))
            progress(f"{spec} at {budget}: {np.mean(evaluations):.0f} evaluations, {memo.scored} coalitions scored so far")
    return out


def _pair_variance(values: np.ndarray) -> np.ndarray:
    """``[F]``: each player's ``(φ̂_a − φ̂_b)² / 2`` averaged over pairs of seeds (its variance, unbiased)."""
    pairs = list(combinations(range(len(values)), 2))
    return np.mean([(values[a] - values[b]) ** 2 / 2 for a, b in pairs], axis=0)


def _needed(budgets: np.ndarray, errors: np.ndarray, target: float) -> float:
    """``budgets`` (any cost measure, increasing) at which ``errors`` reach ``target``, interpolated
    log-log between the two budgets around it; NaN if the largest budget does not reach it, the
    smallest budget (a bound) if already the smallest does."""
    if errors[-1] > target:
        return float("nan")
    if errors[0] <= target:
        return float(budgets[0])
    i = int(np.flatnonzero(errors <= target)[0])
    t = np.log(errors[i - 1] / target) / np.log(errors[i - 1] / errors[i])
    return float(np.exp(np.log(budgets[i - 1]) + t * np.log(budgets[i] / budgets[i - 1])))


def summarise(runs: list[SpecRuns]) -> list[dict]:
    """One row per question, spec and budget: the error from the seeds' spread, evaluations and compute;
    on each spec's largest budget, the compute (and evaluations) it needs to reach the error of
    ``permutation`` at its largest budget (shap at the paper's budget), as a ratio with a bootstrap CI
    over players."""
    rows = []
    for key in dict.fromkeys(r.key for r in runs):
        mine = sorted((r for r in runs if r.key == key), key=lambda r: (r.spec, r.budget))
        top = max(r.budget for r in mine)
        pooled = [np.asarray(r.values) for r in mine if r.budget == top]
        mean = np.mean([v.mean(axis=0) for v in pooled], axis=0)
        # E‖mean‖² = ‖φ‖² + Σ_j tr Cov(mean_j) / J²: take the pooled runs' own variance out
        noise = sum(_pair_variance(v).sum() / len(v) for v in pooled) / len(pooled) ** 2
        norm2 = float(max(mean @ mean - noise, 1e-300))
        variances = {(r.spec, r.budget): _pair_variance(np.asarray(r.values)) for r in mine}
        base = [r for r in mine if r.spec == BASELINE]
        picks = np.random.default_rng(0).integers(0, len(mean), size=(_BOOTSTRAP, len(mean)))
        for spec in dict.fromkeys(r.spec for r in mine):
            own = [r for r in mine if r.spec == spec]
            for r in own:
                rows.append({"key": key, "description": r.description, "spec": spec, "budget": r.budget,
                             "seeds": len(r.seeds), "n_players": len(mean),
                             "error": float(np.sqrt(variances[(spec, r.budget)].sum() / norm2)),
                             "evaluations": float(np.mean(r.evaluations)), "cost_ms": float(np.mean(r.cost_ms))})
            if not base or (len(own) < 2 and spec != BASELINE):
                continue
            b = base[-1]
            cost = np.array([np.mean(r.cost_ms) for r in own])
            evals = np.array([np.mean(r.evaluations) for r in own])

            def ratios(players):
                target = np.sqrt(variances[(BASELINE, b.budget)][players].sum())
                err = np.array([np.sqrt(variances[(spec, r.budget)][players].sum()) for r in own])
                return (np.mean(b.cost_ms) / _needed(cost, err, target), np.mean(b.evaluations) / _needed(evals, err, target))

            if spec == BASELINE:
                rows[-1].update(compute_ratio=1.0, evaluation_ratio=1.0, compute_ratio_ci=[1.0, 1.0])
                continue
            compute, evaluations = ratios(np.arange(len(mean)))
            # reached already at the smallest budget tried: the ratio is a lower bound
            at_least = bool(np.sqrt(variances[(spec, own[0].budget)].sum()) <= np.sqrt(variances[(BASELINE, b.budget)].sum()))
            # a resample (or the estimate) that never reaches the target counts as 0: "not reached"
            boot = np.nan_to_num(np.array([ratios(p)[0] for p in picks]), nan=0.0)
            rows[-1].update(compute_ratio=None if np.isnan(compute) else float(compute),
                            evaluation_ratio=None if np.isnan(evaluations) else float(evaluations),
                            compute_ratio_ci=[float(x) for x in np.percentile(boot, [2.5, 97.5])], at_least=at_least)
    return rows


def format_table(rows: list[dict]) -> str:
    """Markdown: per question and budget, each spec's error (from the seeds' spread), evaluations,
    compute and compute ratio against ``permutation`` at equal error."""
    lines = []
    for key in dict.fromkeys(r["key"] for r in rows):
        mine = [r for r in rows if r["key"] == key]
        lines += [f"**{mine[0]['description']}** — F = {mine[0]['n_players']}, {mine[0]['seeds']} seeds", "",
                  "| estimator | budget | evaluations | compute (s) | error | to reach `permutation`'s error at its largest budget: less compute (95% CI over players); fewer evaluations |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(mine, key=lambda r: (r["spec"] != BASELINE, r["spec"], r["budget"])):
            bound = "≥ " if r.get("at_least") else ""
            ratio = "" if "compute_ratio" not in r else "not reached" if r["compute_ratio"] is None else (
                f"{bound}{r['compute_ratio']:.2f}× ({r['compute_ratio_ci'][0]:.2f}–{r['compute_ratio_ci'][1]:.2f}); "
                f"{bound}{r['evaluation_ratio']:.2f}×")
            lines.append(f"| `{r['spec']}` | {r['budget']} | {r['evaluations']:.0f} | {r['cost_ms'] / 1000:.1f} | "
                         f"{r['error']:.3f} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def save_json(runs: list[SpecRuns], path: str, command, meta: dict) -> None:
    """The runs, their summary, the command(s) and the machine's meta, as JSON."""
    with open(path, "w") as fh:
        json.dump({"command": command, "meta": meta, "runs": [asdict(r) for r in runs], "summary": summarise(runs)},
                  fh, indent=1)


def load_runs(path: str) -> tuple[list[SpecRuns], dict]:
    """The runs of a JSON written by :func:`save_json`, and the whole document."""
    with open(path) as fh:
        data = json.load(fh)
    runs = [SpecRuns(**{**r, "seeds": tuple(r["seeds"]), "values": tuple(tuple(v) for v in r["values"]),
                        "evaluations": tuple(r["evaluations"]), "cost_ms": tuple(r["cost_ms"])}) for r in data["runs"]]
    return runs, data
