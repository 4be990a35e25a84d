"""Real-model games for the estimator benchmark: the demo model on one synthetic question.

A model's game has no closed-form Shapley values; with few players (8 frames + ~10 words, F ≈ 18) all
``2^F`` coalitions can be scored once into a table (:class:`~vqa_shap.measure.games.TableGame`),
which gives exact values and lets every estimator run against the table at no model cost. The table
is cached on disk (outside the repository: it is ~10 MB and regenerated from the committed demo
model in 15–35 minutes on one thread, depending on the machine load).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vqa_shap.cache_dir import cache_root
from vqa_shap.measure.games import TableGame

__all__ = ["demo_question_game", "enumerate_table", "demo_table_game"]


def demo_question_game(n_frames: int = 8, question: int = 0, seed: int = 0, workdir: str | os.PathLike | None = None):
    """The demo model's value function on synthetic question ``question`` (of a seeded sample).

    Returns:
        ``(value_fn, n_features, n_video, description)``; ``value_fn`` maps ``bool[B, F]`` to the
        option scores ``float[B, K]``.
    """
    import tempfile

    from vqa_shap.measure.pipeline import synthetic_cases
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    protocol = get_protocol("pollard2025")
    workdir = workdir or tempfile.mkdtemp(prefix="vqa_shap_demo_game_")
    case = synthetic_cases(question + 1, seed=seed, workdir=workdir, n_frames=n_frames)[question]
    loader_cls, checkpoint = resolve_model("demo")
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    description = f"demo model, {n_frames} frames, {case.question.question!r}"
    return (lambda masks: loader.score(prepared, masks)), int(prepared.n_features), int(prepared.n_video), description


def enumerate_table(value_fn, n_players: int, n_video: int, chunk: int = 1024) -> np.ndarray:
    """Values of all ``2^F`` coalitions, row ``code`` = coalition with player i present iff bit i.

    The video players (the first ``n_video``) are the low bits; chunks hold whole runs of text
    coalitions with one video part, so a prefix-sharing loader computes each video prefix once.
    """
    n_text = n_players - n_video
    text_codes = np.arange(2 ** n_text, dtype=np.int64) << n_video
    table = None
    for video_code in range(2 ** n_video):
        codes = video_code | text_codes
        for start in range(0, len(codes), chunk):
            part = codes[start:start + chunk]
            masks = ((part[:, None] >> np.arange(n_players)[None, :]) & 1).astype(bool)
            out = np.asarray(value_fn(masks), dtype=np.float64)
            if table is None:
                table = np.empty((2 ** n_players, out.shape[1]))
            table[part] = out
    return table


def demo_table_game(n_frames: int = 8, question: int = 0, cache_dir: str | os.PathLike | None = None,
                    progress: bool = True) -> TableGame:
    """The demo model's game on one synthetic question as a full table (cached; built if missing).

    The cache key includes the demo model's weights hash, so a retrained model rebuilds the table.
    """
    from vqa_shap.loaders import resolve_model

    _, checkpoint = resolve_model("demo")
    weights = sorted(Path(checkpoint).glob("*.safetensors"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in weights)).hexdigest()[:12]
    path = Path(cache_dir or cache_root()) / f"demo_table_f{n_frames}_q{question}_{digest}.npz"
    if path.exists():
        data = np.load(path)
        return TableGame("demo_model", int(data["n_players"]), data["table"], video_players=tuple(range(int(data["n_video"]))),
                         target_output=int(data["target"]))
    value_fn, n_features, n_video, description = demo_question_game(n_frames, question)
    if progress:
        print(f"enumerating 2^{n_features} coalitions of the {description} into {path}", flush=True)
    table = enumerate_table(value_fn, n_features, n_video)
    target = int(np.argmax(table[-1]))     # the option the model picks on the full input
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, table=table, n_players=n_features, n_video=n_video, target=target,
             meta=json.dumps({"description": description}))
    tmp.replace(path)
    return TableGame("demo_model", n_features, table, video_players=tuple(range(n_video)), target_output=target)
