"""Loader speed on a realistic-proportion tiny model (used by ``scripts/bench_loader.py``).

Two measurements, each side by side in one run with one pinned thread:

* :func:`time_question` — one question at equal budget, the paper's way (shap's PermutationExplainer,
  batch 1, per mask the real processor and the full model's ``generate``:
  :func:`vqa_shap.measure.paper_pipeline.paper_shapley`) against vqa-shap's (``prepare`` once, then the
  ``permutation`` estimator, which draws shap's permutations, through a :class:`~vqa_shap.game.Game`
  and the loader's prefix-tree scoring), the two alternating first;
* :func:`per_evaluation_costs` — the primitives, interleaved: a whole prompt, the system + video
  prefix, a text suffix on a cached prefix (batch 1 and batch 8), a step of a permutation path with
  prefix-tree sharing, one evaluation the paper's way.

Exactness of the scoring paths is proven by the loader tests (cached = pixel masking, prefix-tree
sharing = one by one), so only time is compared here.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
from vqa_shap.measure.doc_tables import markers, replace_between, update_file
from vqa_shap.measure.stats import mean_ci

#: EgoSchema-style questions with long options (~150 text tokens, F = 32 frames + ~145 words).
QUESTIONS = (
    ("Taking into account all the actions performed by c, what can you deduce about the primary objective "
     "and focus within the video content?",
     ("C is cooking a meal in the kitchen and cuts the vegetables with a knife before putting them in the pan.",
      "C is cleaning the kitchen, washing every bowl and every cup in the sink and drying them with a towel.",
      "C is looking for a cup in the cupboard and then fills it with water from the tap to drink it.",
      "C is moving objects from the table to the fridge and then closes the door of the fridge carefully.",
      "C is washing the bowl and the pan while talking to the person who is standing next to the table.")),
    ("What is the overarching theme of the video, considering how c interacts with the objects and the "
     "person throughout the whole video?",
     ("C teaches the person how to repair a bicycle by showing each tool and explaining every single step.",
      "C and the person build a wooden shelf together, measuring the boards and fixing them with screws.",
      "C paints the walls of the room while the person moves the furniture away from the walls and the floor.",
      "C plays a card game with the person at the table and both of them laugh after every round they play.",
      "C prepares a garden bed, digging the soil with a shovel and planting small flowers in a long row.")),
    ("How would you summarise the sequence of events in the video, and which action of c was the most "
     "important to reach the final result?",
     ("C opens the laptop, reads a document for a long time and then writes notes in a small paper notebook.",
      "C folds the clothes from the basket, sorts them by colour and puts them into the drawers of the wardrobe.",
      "C fixes a leaking tap under the sink with a wrench and then checks that the water no longer drips.",
      "C sews a button on a shirt, cuts the thread with scissors and irons the shirt on the ironing board.",
      "C feeds the dog, fills its bowl with water and then takes the dog outside for a walk in the park.")),
    ("Describe the main goal of c in this video, and explain how the tools that c uses help to reach it "
     "over the course of the video.",
     ("C uses a knife and a board to cut bread and cheese, then arranges them on a plate for the person.",
      "C uses a brush and a bucket of soapy water to clean the car, starting with the wheels and the doors.",
      "C uses a hammer and nails to hang three pictures on the wall after marking each place with a pencil.",
      "C uses a needle and a ball of wool to knit a long scarf while sitting on the sofa near the window.",
      "C uses a rake and a bag to collect the leaves in the yard and carries the full bag to the street.")),
)


def benchmark_question(realistic: bool = True, seed: int = 0):
    """Question ``seed`` (of :data:`QUESTIONS`, cycled) with random frames drawn from ``seed``: 32 frames
    of 96x128 (realistic) or a short question with 4 frames (smoke tests)."""
    from vqa_shap.protocol.base import FramePlan, FrameRef
    from vqa_shap.schema.records import Question, VisualInput

    n_frames = 32 if realistic else 4
    text, options = QUESTIONS[seed % len(QUESTIONS)]
    if not realistic:
        text, options = "What is the goal of c?", tuple(" ".join(o.split()[:3]) for o in options)
    question = Question(f"bench-{seed}", "egoschema", "bench", text, options, 0,
                        inputs=(VisualInput("video", f"bench-{seed}.mp4"),))
    plan = FramePlan(tuple(FrameRef(0, 4 * i, 0.5 * i) for i in range(n_frames)))
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (n_frames, 96, 128, 3), dtype=np.uint8)]
    return question, plan, frames


def workload(n_features: int, n_video: int, kind: str, size: int, seed: int = 0) -> np.ndarray:
    """Coalitions to time.

    ``permutation``: antithetic permutation sampling as the paper's shap (all masked, add the players one
    by one in a random order, then remove them in the same order), ``size`` rows of it, sorted by video
    part (the loader orders a call's coalitions itself). ``grouped``: a
    few video parts, each with many text masks (what text-side sweeps produce); ``random``: i.i.d. rows.
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random((size, n_features)) < 0.5
    if kind == "grouped":
        parts = max(1, size // 16)
        rows = rng.random((size, n_features)) < 0.5
        videos = rng.random((parts, n_video)) < 0.5
        rows[:, :n_video] = videos[np.arange(size) % parts]
        return rows[np.argsort(np.arange(size) % parts, kind="stable")]
    if kind == "permutation":
        rows = []
        while len(rows) < size:
            order = rng.permutation(n_features)
            mask = np.zeros(n_features, bool)
            rows.append(mask.copy())
            for i in order:
                mask[i] = True
                rows.append(mask.copy())
            for i in order:
                mask[i] = False
                rows.append(mask.copy())
        rows = np.array(rows[:size])
        keys = [r[:n_video].tobytes() for r in rows]
        return rows[sorted(range(size), key=keys.__getitem__)]
    raise ValueError(f"unknown workload {kind!r}; valid: permutation, grouped, random")


# ------------------------------------------------------------------ one question at equal budget
@dataclass(frozen=True)
class QuestionRun:
    """One question scored both ways at the same budget.

    Attributes:
        question: index into :data:`QUESTIONS` (also the frames' seed).
        seed: the estimators' seed (shap's and ours: the same permutations).
        n_features: F.
        evaluations: the budget: coalitions the paper's way scores (ours scores a repeated one once).
        paper_s: wall time the paper's way.
        ours_s: wall time vqa-shap's way (``prepare`` included).
        speedup: ``paper_s / ours_s``.
        tokens_per_evaluation: prompt tokens our language model ran per evaluation.
        paper_first: which way ran first.
        load: ``os.getloadavg()`` after the pair.
    """

    question: int
    seed: int
    n_features: int
    evaluations: int
    paper_s: float
    ours_s: float
    speedup: float
    tokens_per_evaluation: float
    paper_first: bool
    load: tuple[float, float, float]


@contextlib.contextmanager
def processor_once(loader, prepared):
    """The paper's LLaVA-Video script: the frames go through the processor once; a mask multiplies the
    normalised pixels (zeros for masked frames) and the masked prompt is re-tokenised. Within the
    block ``loader.pixel_inputs`` (used by the paper's pipeline per mask) works that way.

    Raises:
        ValueError: the protocol's frame baseline is not ``"normalized_zero"`` (pixels cannot be
            masked by a product then).
    """
    import torch

    if prepared.baseline != "normalized_zero":
        raise ValueError(f"processor_once needs the normalized_zero baseline, not {prepared.baseline!r}")
    base = loader.pixel_inputs(prepared, np.ones(prepared.n_features, dtype=bool))

    def masked_inputs(prep, mask):
        mask = loader._check(prep, mask)[0]
        ids = torch.tensor([loader.token_ids(prep, mask)], device=loader.device)
        pixels = base["pixel_values_videos"]
        inputs = dict(base, input_ids=ids, attention_mask=torch.ones_like(ids),
                      pixel_values_videos=[v.clone() for v in pixels] if isinstance(pixels, list) else pixels.clone())
        loader.zero_pixels(inputs, [u for u, keep in zip(prep.units, mask[:prep.n_video]) if not keep])
        return inputs

    loader.pixel_inputs = masked_inputs
    try:
        yield
    finally:
        del loader.pixel_inputs  # the class's method again


def time_question(loader, question_index: int, seed: int, *, permutations: int = 1, paper_first: bool = True,
                  max_new_tokens: int = 2, paper_processor: str = "once", realistic: bool = True,
                  protocol=None) -> QuestionRun:
    """Time one question the paper's way and ours at the same budget (``permutations × (2F + 1)``).

    ``max_new_tokens`` caps the paper's generation: a trained model answers ``"A<|im_end|>"`` and stops
    after 2 tokens, a random tiny model never stops, so the default charges the paper's way what a
    trained model costs (a higher cap only makes it slower). ``paper_processor``: ``"once"`` (the
    paper's LLaVA-Video script, :func:`processor_once`) or ``"per_mask"`` (its VideoLLaMA3 script:
    the processor on every masked input).
    """
    if paper_processor not in ("once", "per_mask"):
        raise ValueError(f"paper_processor must be 'once' or 'per_mask', got {paper_processor!r}")
    from vqa_shap.measure.paper_pipeline import paper_shapley
    from vqa_shap.estimators import get_estimator
    from vqa_shap.game import Game
    from vqa_shap.protocol import get_protocol

    protocol = protocol or get_protocol("pollard2025")
    question, plan, frames = benchmark_question(realistic=realistic, seed=question_index)

    def ours() -> tuple[float, int, float]:
        start, tokens = time.perf_counter(), loader.tokens_run
        prepared = loader.prepare(question, frames, plan, protocol)
        game = Game(lambda c: loader.score(prepared, c), prepared.n_features, video_features=prepared.n_video)
        budget = permutations * (2 * prepared.n_features + 1)
        get_estimator("permutation").estimate(game, budget, seed)
        return time.perf_counter() - start, game.evaluations, (loader.tokens_run - tokens) / game.evaluations

    def paper() -> tuple[float, int]:
        prepared = loader.prepare(question, frames, plan, protocol)  # only its frames/plan/letters are used
        budget = permutations * (2 * prepared.n_features + 1)
        if paper_processor == "per_mask":
            estimate = paper_shapley(loader, prepared, budget, seed=seed, max_new_tokens=max_new_tokens)
        else:
            start = time.perf_counter()
            with processor_once(loader, prepared):
                estimate = paper_shapley(loader, prepared, budget, seed=seed, max_new_tokens=max_new_tokens)
            return time.perf_counter() - start, estimate.evaluations  # the one processor run included
        return estimate.seconds, estimate.evaluations

    if paper_first:
        paper_s, paper_evals = paper()
        ours_s, evals, tokens = ours()
    else:
        ours_s, evals, tokens = ours()
        paper_s, paper_evals = paper()
    if abs(evals - paper_evals) > permutations:  # the Game scores a repeated coalition (∅ twice per path) once
        raise RuntimeError(f"unequal budgets: ours {evals} evaluations, the paper's {paper_evals}")
    n_features = len(protocol.features(question, plan, loader.temporal_unit))
    return QuestionRun(question_index, seed, n_features, paper_evals, paper_s, ours_s, paper_s / ours_s, tokens,
                       paper_first, tuple(round(x, 2) for x in os.getloadavg()))


def warm_up() -> None:
    """Pay one-time costs before anything is timed: shap compiles its kernels (numba) on its first
    explanation of each output shape (~8 s), here for K outputs as the option scores."""
    import shap

    explainer = shap.Explainer(lambda rows: np.repeat(np.asarray(rows, dtype=float).sum(1, keepdims=True), 5, 1),
                               lambda mask, x: (mask * x)[None, :], algorithm="permutation", seed=0)
    explainer(np.ones((1, 3)), max_evals=7, batch_size=1, silent=True)


# ------------------------------------------------------------------ per-evaluation costs
PRIMITIVES = ("full_forward", "prefix", "suffix_on_prefix", "suffix_on_prefix_batch8", "permutation_step",
              "paper_evaluation", "paper_evaluation_processor_once")


def _primitives(loader, prepared, path: np.ndarray):
    """name -> (function, rows it scores): the timed primitives of :func:`per_evaluation_costs`."""
    import torch
    from transformers import DynamicCache

    full = np.ones(prepared.n_features, dtype=bool)
    row = loader._row(prepared, full)
    video = (row.ids == loader.video_token_id).nonzero()
    split = int(video[-1]) + 1  # system prompt + video tokens
    embeds = loader._embed(prepared, row.ids, full[:prepared.n_video])[None]
    positions = row.positions[..., None, :]

    def forward(start, stop, cache, batch=1):
        n = stop
        return loader.forward_last(embeds[:, start:stop].expand(batch, -1, -1),
                                   torch.ones(batch, n, dtype=torch.long), positions[..., start:stop].expand(
                                       *positions.shape[:-2], batch, -1), cache)

    def cache_of(batch=1):
        _, cache = forward(0, split, DynamicCache(config=loader.text_config()))
        out = DynamicCache(config=loader.text_config())
        for idx, layer in enumerate(cache.layers):
            shape = (batch,) + tuple(layer.keys.shape[1:])
            out.update(layer.keys.expand(shape), layer.values.expand(shape), idx)
        return out

    prefix_cache = {1: cache_of(1), 8: cache_of(8)}

    def suffix(batch):
        cache = DynamicCache(config=loader.text_config())
        for idx, layer in enumerate(prefix_cache[batch].layers):
            cache.update(layer.keys[..., :split, :], layer.values[..., :split, :], idx)
        forward(split, row.ids.shape[0], cache, batch)

    def paper(once: bool):
        from vqa_shap.measure.paper_pipeline import paper_score

        if not once:
            paper_score(loader, prepared, path[len(path) // 2], max_new_tokens=2)
            return
        with processor_once(loader, prepared):
            start = time.perf_counter()  # the processor's one run is not per evaluation
            paper_score(loader, prepared, path[len(path) // 2], max_new_tokens=2)
            once_ms.append(1000 * (time.perf_counter() - start))

    once_ms: list[float] = []

    return {
        "full_forward": (lambda: forward(0, row.ids.shape[0], None), 1),
        "prefix": (lambda: forward(0, split, DynamicCache(config=loader.text_config())), 1),
        "suffix_on_prefix": (lambda: suffix(1), 1),
        "suffix_on_prefix_batch8": (lambda: suffix(8), 8),
        "permutation_step": (lambda: loader.score(prepared, path), len(path)),
        "paper_evaluation": (lambda: paper(False), 1),
        "paper_evaluation_processor_once": (lambda: paper(True), 1),
    }, once_ms


def per_evaluation_costs(loader, prepared, *, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Median milliseconds per evaluation of each of :data:`PRIMITIVES`, interleaved round-robin.

    ``permutation_step`` scores one antithetic permutation path (2F + 1 coalitions, shap's sampler) with
    prefix-tree sharing; ``video_prefix_step`` is what the same path costs when only whole video parts
    are shared (the previous scoring), modelled from the measured primitives: a prefix per distinct
    video part of the path plus a batch-8 suffix per coalition.
    """
    import torch

    path = workload(prepared.n_features, prepared.n_video, "permutation", 2 * prepared.n_features + 1, seed)
    timed, once_ms = _primitives(loader, prepared, path)
    times: dict[str, list[float]] = {name: [] for name in PRIMITIVES}
    with torch.inference_mode():
        for rep in range(repeats + 1):  # the first round warms caches and is not kept
            for name in PRIMITIVES:
                fn, rows = timed[name]
                start = time.perf_counter()
                fn()
                if rep:
                    times[name].append(1000 * (time.perf_counter() - start) / rows)
    times["paper_evaluation_processor_once"] = once_ms[1:]  # without the processor's single run
    costs = {name: statistics.median(values) for name, values in times.items()}
    parts = len({m[:prepared.n_video].tobytes() for m in path})
    costs["video_prefix_step"] = (parts * costs["prefix"] + len(path) * costs["suffix_on_prefix_batch8"]) / len(path)
    return costs


# ------------------------------------------------------------------ summary and table
def summarise(runs: list[QuestionRun]) -> dict[str, list[float]]:
    """``{quantity: [mean, ci95 half-width]}`` over the runs."""
    fields = {"speedup": [r.speedup for r in runs], "paper_s": [r.paper_s for r in runs],
              "ours_s": [r.ours_s for r in runs],
              "paper_ms_per_evaluation": [1000 * r.paper_s / r.evaluations for r in runs],
              "ours_ms_per_evaluation": [1000 * r.ours_s / r.evaluations for r in runs],
              "tokens_per_evaluation": [r.tokens_per_evaluation for r in runs]}
    return {name: list(mean_ci(values)) for name, values in fields.items()}


TABLE_START, TABLE_END = markers("loader-table")


def render_table(report: dict) -> str:
    """The markdown tables of a ``bench_loader.json`` report (docs/performance-loader.md)."""
    s = report["summary"]
    fmt = lambda key, unit="", digits=1: f"{s[key][0]:.{digits}f}{unit} ± {s[key][1]:.{digits}f}{unit}"  # noqa: E731
    runs = report["runs"]
    lines = [
        f"{len(runs)} runs ({len({r['question'] for r in runs})} questions × {len({r['seed'] for r in runs})} seeds), "
        f"F = {min(r['n_features'] for r in runs)}-{max(r['n_features'] for r in runs)}, "
        f"{runs[0]['evaluations'] // (2 * runs[0]['n_features'] + 1)} permutation(s) per question, "
        f"the paper's processor {'once per question' if report['paper_processor'] == 'once' else 'per mask'}, "
        f"{report['threads']} thread, load average {min(r['load'][0] for r in runs):.1f}-"
        f"{max(r['load'][0] for r in runs):.1f}; mean ± 95% CI.",
        "",
        "| per question | the paper's way | vqa-shap | speed-up |",
        "|---|---|---|---|",
        f"| seconds | {fmt('paper_s', ' s')} | {fmt('ours_s', ' s')} | **{fmt('speedup', 'x', 2)}** |",
        f"| ms per evaluation | {fmt('paper_ms_per_evaluation')} | {fmt('ours_ms_per_evaluation')} | |",
        f"| prompt tokens run per evaluation | {report['sequence_length']} (whole prompt) | "
        f"{fmt('tokens_per_evaluation', '', 0)} | |",
        "",
        "| per evaluation (ms, median) | " + " | ".join(PRIMITIVES + ("video_prefix_step",)) + " |",
        "|---|" + "---|" * (len(PRIMITIVES) + 1),
        "| this run | " + " | ".join(f"{report['per_evaluation'][k]:.1f}" for k in PRIMITIVES + ("video_prefix_step",)) + " |",
    ]
    return "\n".join(lines)


def render_doc(text: str, report: dict) -> str:
    """``text`` with the part between :data:`TABLE_START` and :data:`TABLE_END` replaced by the tables."""
    return replace_between(text, TABLE_START, TABLE_END, render_table(report) + "\n")


def update_doc(doc_path: str | os.PathLike, report: dict) -> bool:
    """:func:`render_doc` on the file ``doc_path``; ``True`` if it changed."""
    return update_file(doc_path, TABLE_START, TABLE_END, render_table(report) + "\n")
