#!/usr/bin/env python
"""Where the demo game's (F = 18) sampling variance is, and what each estimator lever could gain there.

Reads the demo model's full coalition table (the estimator benchmark's cache, built if missing) and
measures, for the target option: the per-sample variance of permutation-path marginals by player
(video vs words), of text-flip samples (``text_flips``), the variance a level-stratified Neyman
allocation of marginal samples would leave (exact, from all 2^17 marginals of every player), and
how much of the game a best order-1 / order-2 surrogate explains (what a control variate could use).

    python scripts/diagnose_demo_game.py --json benchmarks/demo_game_variance.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _sampling(game, n_samples: int, seed: int) -> dict:
    import numpy as np

    from vqa_shap.estimators.permutation import path_marginals, path_masks
    from vqa_shap.estimators.text_flips import flip_marginals, flip_masks

    n, t, video = game.n_players, game.target_output, np.array(game.video_players)
    text = np.setdiff1d(np.arange(n), video)
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(n) for _ in range(n_samples)])
    path = path_marginals(perms, game(path_masks(perms).reshape(-1, n)).reshape(n_samples, 2 * n + 1, -1))[:, :, t]
    base = rng.random((n_samples, n)) < rng.random(n_samples)[:, None]
    out = game(flip_masks(base, text).reshape(-1, n)).reshape(n_samples, 2, len(text) + 1, -1)
    flips = flip_marginals(base, text, out)[:, :, t]
    var = path.var(axis=0, ddof=1)
    return {"samples": n_samples, "path_variance_per_player": var.round(4).tolist(),
            "video_share_of_path_variance": float(var[video].sum() / var.sum()),
            "text_path_variance_mean": float(var[text].mean()),
            "text_flip_variance_mean": float(flips.var(axis=0, ddof=1).mean())}


def _levels(values, n: int) -> dict:
    """Per marginal sample (two evaluations), summed over players: simple random sampling of
    (coalition, player), proportional and Neyman allocation over coalition sizes, antithetic pairs."""
    import numpy as np

    codes = np.arange(2 ** n)
    size = np.array([bin(c).count("1") for c in codes])
    out = {"simple": 0.0, "proportional": 0.0, "neyman": 0.0, "antithetic_pair": 0.0}
    for i in range(n):
        bit = 1 << i
        s = codes[(codes & bit) == 0]
        m = values[s | bit] - values[s]
        rest = ((1 << n) - 1) & ~bit & ~s
        pair = (m + values[rest | bit] - values[rest]) / 2
        var = np.array([m[size[s] == k].var() for k in range(n)])
        mean = np.array([m[size[s] == k].mean() for k in range(n)])
        pvar = np.array([pair[size[s] == k].var() for k in range(n)])
        pmean = np.array([pair[size[s] == k].mean() for k in range(n)])
        out["simple"] += float(np.mean(var + (mean - mean.mean()) ** 2))
        out["proportional"] += float(np.mean(var))
        out["neyman"] += float(np.mean(np.sqrt(var)) ** 2)
        out["antithetic_pair"] += float(np.mean(pvar + (pmean - mean.mean()) ** 2))
    return out


def _surrogates(values, n: int) -> dict:
    """Share of the table's variance (all coalitions, equal weight) a least-squares surrogate of
    order 1 (additive) and order 2 (plus all pairs) explains."""
    import numpy as np

    z = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    iu, ju = np.triu_indices(n, 1)
    out = {}
    for order in (1, 2):
        x = np.hstack([np.ones((len(z), 1)), z] + ([z[:, iu] * z[:, ju]] if order == 2 else []))
        theta, *_ = np.linalg.lstsq(x, values, rcond=None)
        out[f"order_{order}_explained_variance"] = float(1 - np.var(values - x @ theta) / np.var(values))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4000, help="paths and flip samples drawn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import torch

    from vqa_shap.measure.model_games import demo_table_game

    torch.set_num_threads(1)
    load = list(os.getloadavg())
    game = demo_table_game(8)
    values = game.table[:, game.target_output]
    result = {"command": "scripts/diagnose_demo_game.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "game": "demo_model", "n_players": game.n_players, "n_video": len(game.video_players),
              "sampling": _sampling(game, args.samples, args.seed),
              "per_marginal_sample_variance": _levels(values, game.n_players),
              "surrogates": _surrogates(values, game.n_players),
              "meta": {"loadavg_start": load, "loadavg_end": list(os.getloadavg()), "threads": 1}}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
