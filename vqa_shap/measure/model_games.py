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

from vqa_shap.atomic_files import atomic_write_npz
from vqa_shap.cache_dir import cache_root
from vqa_shap.measure.games import TableGame

__all__ = ["demo_question_game", "enumerate_table", "demo_table_game", "model_digest",
           "EvaluationMemo", "QUESTION_GAMES", "question_game", "measure_questions", "merge_json", "add_game_arguments"]


def demo_question_game(n_frames: int = 8, question: int = 0, seed: int = 0, workdir: str | os.PathLike | None = None):
    """The demo model's value function on synthetic question ``question`` (of a seeded sample).

    Returns:
        ``(value_fn, n_features, n_video, description)``; ``value_fn`` maps ``bool[B, F]`` to the
        option scores ``float[B, K]``.
    """
    import tempfile

    from vqa_shap.measure.bench_cases import synthetic_cases
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
    digest = model_digest(checkpoint)
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
    atomic_write_npz(path, mkdir=True, table=table, n_players=n_features, n_video=n_video, target=target,
                     meta=json.dumps({"description": description}))
    return TableGame("demo_model", n_features, table, video_players=tuple(range(n_video)), target_output=target)


def model_digest(checkpoint: str | os.PathLike) -> str:
    """12 hex digits of the SHA-256 of a checkpoint folder's ``*.safetensors`` files (a retrained
    model gets a new digest, so every cache keyed by it is rebuilt)."""
    weights = sorted(Path(checkpoint).glob("*.safetensors"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in weights)).hexdigest()[:12]


class EvaluationMemo:
    """A deterministic value function memoised on disk: coalition -> scores.

    A model's game is deterministic, so every coalition scored once (by any estimator, seed or
    reference run) is kept in ``path`` (``.npz``: packed coalition bits and the ``float64[K]``
    scores) and never scored again; estimator experiments then cost only the coalitions no earlier
    run drew. The :class:`~vqa_shap.game.Game` around it still charges what a real run would pay.
    ``path`` should name the model's digest and the question (see :func:`question_game`).
    """

    def __init__(self, value_fn, n_players: int, path: str | os.PathLike):
        self.value_fn, self.n_players, self.path = value_fn, int(n_players), Path(path)
        self._index: dict[bytes, int] = {}
        self._values: list[np.ndarray] = []
        self._saved = 0
        self.scored = 0   # coalitions this process had to score (memo misses)
        if self.path.exists():
            data = np.load(self.path)
            for key, value in zip(data["keys"], data["values"]):
                self._index[key.tobytes()] = len(self._values)
                self._values.append(value)
            self._saved = len(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
        missing = [r for r, key in enumerate(keys) if key not in self._index]
        missing = list({keys[r]: r for r in missing}.values())
        if missing:
            out = np.asarray(self.value_fn(masks[missing]), dtype=np.float64)
            for r, value in zip(missing, out.reshape(len(missing), -1)):
                self._index[keys[r]] = len(self._values)
                self._values.append(value)
            self.scored += len(missing)
        return np.stack([self._values[self._index[key]] for key in keys])

    def save(self) -> None:
        """Write the memo atomically (only when it grew)."""
        if len(self._values) == self._saved:
            return
        keys = np.stack([np.frombuffer(k, dtype=np.uint8) for k in self._index])
        order = np.fromiter(self._index.values(), dtype=np.int64)
        atomic_write_npz(self.path, mkdir=True, keys=keys, values=np.stack(self._values)[order])
        self._saved = len(self._values)


#: the trained models whose games :func:`question_game` builds: the question set each is measured on
#: (the pipeline benchmark's, same seed) and how the table names it
QUESTION_GAMES = {
    "demo-long": ("64 frames", "short_evidence"),
    "demo-realistic": ("32 frames", "realistic-layout synthetic"),
}


def question_game(model: str, question: int = 0, seed: int = 60_000_000, cache_dir: str | os.PathLike | None = None,
                  workdir: str | os.PathLike | None = None):
    """A trained demo model's game on one question of the pipeline benchmark, as a memoised value function:
    ``demo-long`` on ``short_evidence`` question ``question`` (64 frames), ``demo-realistic`` on its
    realistic-layout synthetic question ``question`` (32 frames, EgoSchema-length prompt).

    Returns:
        ``(memo, n_video, key, description)``: ``memo`` is an :class:`EvaluationMemo` (call it with
        ``bool[B, F]``; ``memo.n_players`` is F), ``key`` names the game (model digest + question
        digest) for stored references.
    """
    import tempfile

    from vqa_shap.measure.bench_cases import long_video_cases, synthetic_cases
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    if model not in QUESTION_GAMES:
        raise ValueError(f"no question game for model {model!r}; valid: {', '.join(QUESTION_GAMES)}")
    protocol = get_protocol("pollard2025")
    workdir = workdir or tempfile.mkdtemp(prefix="vqa_shap_question_game_")
    if model == "demo-long":
        case = long_video_cases(1, seed=seed, workdir=workdir, start=question)[0]
    else:
        case = synthetic_cases(1, seed=seed, workdir=workdir, start=question, realistic=True)[0]
    loader_cls, checkpoint = resolve_model(model)
    loader = loader_cls.load(checkpoint, device="cpu", dtype="float32")
    prepared = loader.prepare(case.question, case.frames, case.plan, protocol)
    q = case.question
    what = json.dumps({"question": q.question, "options": list(q.options), "frames": len(case.frames),
                       "protocol": protocol.name, "seed": seed, "index": question}, sort_keys=True)
    key = f"{model}_{model_digest(checkpoint)}_{hashlib.sha256(what.encode()).hexdigest()[:12]}"
    path = Path(cache_dir or cache_root()) / f"memo_{key}.npz"
    memo = EvaluationMemo(lambda masks: loader.score(prepared, masks), int(prepared.n_features), path)
    frames, question_set = QUESTION_GAMES[model]
    description = f"{model} model, {frames}, {q.question!r} ({question_set} question {question})"
    return memo, int(prepared.n_video), key, description


def measure_questions(model: str, questions, measure, cache_dir=None) -> tuple[list, dict]:
    """``measure(memo, n_video, key, description)`` (a list of results) on each question's memoised game,
    on one torch thread; returns every result and the machine's load before and after."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    meta = {"loadavg_start": list(os.getloadavg()), "threads": 1}
    results = []
    for q in questions:
        memo, n_video, key, description = question_game(model, q, cache_dir=cache_dir)
        results += measure(memo, n_video, key, description)
        print(f"question {q}: {memo.scored} coalitions scored, {len(memo)} in the memo", flush=True)
    meta["loadavg_end"] = list(os.getloadavg())
    return results, meta


def merge_json(paths, load) -> tuple[list, list, dict]:
    """Several benchmark JSONs of disjoint questions merged: ``(items, commands, meta)``, ``load(path)``
    giving ``(items, document)``. A merged JSON keeps its runs' commands and metas, so merging it again
    flattens them."""
    items, commands, metas = [], [], []
    for path in paths:
        found, data = load(path)
        items += found
        commands += data["command"] if isinstance(data["command"], list) else [data["command"]]
        metas += data["meta"].get("runs", [data["meta"]])
    return items, commands, {"runs": metas}


def add_game_arguments(parser, default_model: str, table: str) -> None:
    """The arguments every trained-game benchmark takes: ``--model``, ``--questions``, ``--cache``,
    ``--from-json``, ``--json`` and ``--doc`` (which rewrites ``table`` in a Markdown file)."""
    parser.add_argument("--model", choices=sorted(QUESTION_GAMES), default=default_model,
                        help="demo-long: 64-frame short_evidence questions; demo-realistic: 32-frame realistic-layout ones")
    parser.add_argument("--questions", nargs="+", type=int, default=[0], help="question indices (of the pipeline "
                        "benchmark's questions for that model)")
    parser.add_argument("--cache", default=None, help="memo folder (default $VQA_SHAP_CACHE or ~/.cache/vqa-shap)")
    parser.add_argument("--from-json", nargs="+", default=None, help="no runs: merge these JSONs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--doc", default=None, help=f"rewrite the {table} of this markdown file")

