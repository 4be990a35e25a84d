"""Training the demo model (:func:`train`) on synthetic questions drawn on the fly.

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from vqa_shap.demo.architecture import (HELD_OUT_SEED, REALISTIC_FRAME_SIZE, REALISTIC_TILES, TRAIN_LAYOUTS,
                                        TRAINING_FILE, DemoArchitecture, build_demo_model, transfer_weights)
from vqa_shap.demo.batches import BatchEncoder, forward, option_hits

if TYPE_CHECKING:
    from vqa_shap.demo.evaluation import Evaluation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of :func:`train` (defaults: what the committed model used).

    Attributes:
        steps: most optimiser steps.
        batch_size: questions per step.
        lr: peak AdamW learning rate (linear warm-up, cosine decay).
        warmup: warm-up steps.
        weight_decay: AdamW weight decay.
        seed: weight initialisation and training-question seed.
        frame_dropout: probability that a non-evidence frame is shown as the masking baseline.
        text_loss_weight: weight of the auxiliary losses: next-token loss on the instruction text, and
            the intermediate steps (option word -> its letter after layer 1; answer position -> answer
            word one layer before the last; each frame's video tokens -> the colour and shape words of
            what it shows, after layer 1), read through the unembedding.
        curriculum: fractions of ``steps`` between which the share of distractor frames ramps from 0
            to the benchmark's (before: videos show only the asked-about shape).
        eval_every: steps between held-out evaluations.
        eval_questions: held-out questions of those evaluations.
        target_accuracy: stop early once the held-out accuracy reaches it twice in a row.
        max_minutes: stop after this much wall time (the run still saves the model).
        threads: torch CPU threads.
        n_frames: frames per video (held-out questions; training questions unless ``frame_counts``).
        frame_counts: frames per training video, cycled over the steps (shorter videos are cheaper
            steps; empty: always ``n_frames``).
        layout: ``"frames"`` (one frame per content, the benchmark's videos), ``"short_evidence"``
            (long videos of :mod:`vqa_shap.builders.shapes_long_video`: 12 shots in ``n_frames`` frames, the
            evidence one shot of 1-2 frames; training and held-out questions alike) or ``"realistic"``
            (32-frame videos of the benchmark's drawing tiled 3 x 3, the questions in the long wording).
        eval_batch: held-out questions per forward pass (bounds memory on long prompts).
        templates: question templates of the training questions, cycled (repeat a template to draw
            it more often).
    """

    steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    frame_dropout: float = 0.2
    text_loss_weight: float = 0.5
    curriculum: tuple[float, float] = (0.05, 0.3)
    eval_every: int = 50
    eval_questions: int = 96
    target_accuracy: float = 0.99
    max_minutes: float = 20.0
    threads: int = 1
    n_frames: int = 8
    frame_counts: tuple[int, ...] = ()
    layout: str = "frames"
    eval_batch: int = 16
    # "Which shape was red?" twice as often: looking frames up by colour to read their shape is the
    # step the model learns last (with uniform templates it stayed at ~0.7 while the others were ~1.0)
    templates: tuple[str, ...] = ("colour_of_shape", "shape_of_colour", "shape_of_colour", "shape_shown")

    def __post_init__(self):
        from vqa_shap.builders.shapes import check_templates

        check_templates(self.templates)
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1 or self.eval_questions < 1:
            raise ValueError("TrainConfig: steps, batch_size, eval_every and eval_questions must be >= 1")
        if self.layout not in TRAIN_LAYOUTS:
            raise ValueError(f"TrainConfig.layout: unknown {self.layout!r}; valid: {', '.join(TRAIN_LAYOUTS)}")
        if not 0.0 <= self.curriculum[0] < self.curriculum[1]:
            raise ValueError(f"TrainConfig.curriculum: need 0 <= start < end, got {self.curriculum}")
        if any(n < 2 for n in self.frame_counts):
            raise ValueError(f"TrainConfig.frame_counts: every count must be >= 2, got {self.frame_counts}")



# ---------------------------------------------------------------------------------------------
# training


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        out: the saved model folder.
        steps: optimiser steps taken.
        seconds: wall time of the training loop.
        held_out_accuracy: last held-out accuracy during training (letter logits of the options).
        history: ``{step, loss, held_out_accuracy, seconds}`` at every evaluation.
        stopped: why the loop ended (``"target"``, ``"steps"`` or ``"time"``).
    """

    out: Path
    steps: int
    seconds: float
    held_out_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "steps"


def train(out: str | os.PathLike, config: TrainConfig = TrainConfig(),
          arch: DemoArchitecture = DemoArchitecture(), *, resume: str | os.PathLike | None = None,
          init_from: str | os.PathLike | None = None, progress: bool = True) -> TrainResult:
    """Train the demo model on freshly drawn synthetic questions and save it to ``out``.

    Args:
        out: the model folder to write (replaced atomically when the run ends).
        config: training settings.
        arch: model size.
        resume: a model folder written by an earlier run to continue from (its weights; the
            optimiser restarts with a fresh warm-up, and the question seed is offset by its steps).
        init_from: a trained model folder of another size whose weights start this one
            (:func:`~vqa_shap.demo.architecture.transfer_weights`); a new run, not a continuation.
        progress: show a progress bar.

    Returns:
        A :class:`TrainResult`.
    """
    import torch

    # the thread count and deterministic kernels are process-wide: set for the run, then restored
    threads = torch.get_num_threads()
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _train(Path(out), config, arch, resume, init_from, progress)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train(out: Path, config: TrainConfig, arch: DemoArchitecture, resume: str | os.PathLike | None,
           init_from: str | os.PathLike | None, progress: bool) -> TrainResult:
    import torch
    from tqdm.auto import tqdm

    model, processor = build_demo_model(arch, config.seed)
    earlier: dict[str, Any] = {}
    if resume is not None:
        model = type(model).from_pretrained(str(resume), dtype=torch.float32)
        earlier = json.loads((Path(resume) / TRAINING_FILE).read_text())
    elif init_from is not None:
        transfer_weights(model, init_from)
        earlier = {"init_from": Path(init_from).name}
    model.set_attn_implementation("sdpa")  # batches.head_attention gives the supervised-attention weights
    offset = int(earlier.get("total_steps", earlier.get("steps", 0)))
    encoders = {n: BatchEncoder(model, processor, n) for n in {config.n_frames, *config.frame_counts}}
    encoder = encoders[config.n_frames]
    held_out_items = layout_items(config, config.eval_questions, HELD_OUT_SEED)
    held_out = [encoder(held_out_items[i:i + config.eval_batch])
                for i in range(0, len(held_out_items), config.eval_batch)]
    held_out_tasks = np.array([item.question.task for item in held_out_items])
    rng = np.random.default_rng(config.seed)
    optim = _optimizer(model, config)

    history: list[dict[str, float]] = []
    started = time.perf_counter()
    stopped, streak, accuracy, step = "steps", 0, 0.0, 0
    bar = tqdm(total=config.steps, desc="train demo model", unit="step", disable=not progress)
    running = None
    for step in range(1, config.steps + 1):
        n_frames = config.frame_counts[(step - 1) % len(config.frame_counts)] if config.frame_counts else config.n_frames
        batch = encoders[n_frames](_training_items(config, offset + step, step, n_frames), rng, config.frame_dropout)
        for group in optim.param_groups:
            group["lr"] = _lr_at(config, step - 1)
        value = _optimiser_step(model, optim, batch, encoder.eos, config.text_loss_weight)
        running = value if running is None else 0.95 * running + 0.05 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        elapsed = time.perf_counter() - started
        if step % config.eval_every == 0 or step == config.steps or elapsed > 60 * config.max_minutes:
            accuracy, per_task = _held_out_accuracy(model, held_out, held_out_tasks)
            history.append({"step": step, "loss": running, "held_out_accuracy": accuracy, "per_task": per_task,
                            "seconds": elapsed})
            tasks = ", ".join(f"{t} {a:.2f}" for t, a in per_task.items())
            logger.info("step %d loss %.4f held-out accuracy %.3f (%s; %.0f s)", step, running, accuracy, tasks, elapsed)
            if progress:
                bar.write(f"step {step}: loss {running:.4f}, held-out accuracy {accuracy:.3f} ({tasks}), {elapsed:.0f} s")
            streak = streak + 1 if accuracy >= config.target_accuracy else 0
            if streak >= 2 or elapsed > 60 * config.max_minutes:
                stopped = "target" if streak >= 2 else "time"
                break
    bar.close()
    seconds = time.perf_counter() - started
    model.eval()
    model.set_attn_implementation("sdpa")
    runs = list(earlier.get("runs", [])) + [{"train_config": asdict(config), "steps": step, "train_seconds": seconds,
                                             "stopped": stopped, "history": history}]
    started_from = {"init_from": earlier["init_from"]} if "init_from" in earlier else {}
    _save(model, processor, out, {"architecture": asdict(arch), **started_from, "runs": runs,
                                        "total_steps": offset + step,
                                        "train_seconds": sum(r["train_seconds"] for r in runs),
                                        "held_out_accuracy": accuracy, "held_out_seed": HELD_OUT_SEED,
                                        "torch_threads": config.threads})
    return TrainResult(out, step, seconds, accuracy, history, stopped)


def _optimizer(model, config: TrainConfig):
    """AdamW with weight decay on the matrices other than the embeddings."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98))


def _lr_at(config: TrainConfig, step: int) -> float:
    """The learning rate of (0-based) ``step``: linear warm-up, then cosine decay to 5% of the peak."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress_ = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress_))))


def _training_items(config: TrainConfig, seed_step: int, step: int, n_frames: int) -> list:
    """Step ``step``'s questions (seed from ``seed_step``, which counts the steps of resumed runs too)."""
    from vqa_shap.builders.shapes import DISTRACTOR_P

    # curriculum: videos without distractor shapes first, then the benchmark's mix
    ramp = min(1.0, max(0.0, (step / config.steps - config.curriculum[0]) / (config.curriculum[1] - config.curriculum[0])))
    return layout_items(config, config.batch_size, config.seed * 1_000_003 + seed_step, ramp * DISTRACTOR_P,
                        config.templates, n_frames)


def layout_items(config: TrainConfig, n_questions: int, seed: int, distractor_p: float | None = None,
                 templates: Sequence[str] | None = None, n_frames: int | None = None) -> list:
    """``n_questions`` synthetic items of ``config``'s layout and frame count (by default the
    benchmark's distractor share and templates and ``config.n_frames``, as the held-out questions)."""
    from vqa_shap.builders.shapes import DISTRACTOR_P, TEMPLATES, sample_items
    from vqa_shap.builders.shapes_long_video import held_items

    p = DISTRACTOR_P if distractor_p is None else distractor_p
    templates = TEMPLATES if templates is None else templates
    n_frames = n_frames or config.n_frames
    if config.layout == "short_evidence":
        return list(held_items(n_questions, seed, "short_evidence", n_total=n_frames, distractor_p=p,
                               templates=templates))
    if config.layout == "realistic":
        return list(sample_items(n_questions, seed=seed, n_frames=n_frames, size=REALISTIC_FRAME_SIZE,
                                 distractor_p=p, templates=templates, wording="long", tiles=REALISTIC_TILES))
    return list(sample_items(n_questions, seed=seed, n_frames=n_frames, distractor_p=p, templates=templates))


def _optimiser_step(model, optim, batch: dict, eos: int, text_loss_weight: float) -> float:
    """One optimiser step on ``batch``; returns its loss (answer letter, ``<|im_end|>`` after it, auxiliary)."""
    import torch

    model.train()
    letter_logits, eos_logits, text_loss = forward(model, batch, with_text_loss=True)
    loss = (torch.nn.functional.cross_entropy(letter_logits, batch["letter"])
            + torch.nn.functional.cross_entropy(eos_logits, torch.full_like(batch["letter"], eos))
            + text_loss_weight * text_loss)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    return float(loss.detach())


def _held_out_accuracy(model, held_out: list[dict], tasks: np.ndarray) -> tuple[float, dict[str, float]]:
    """Accuracy on the held-out batches (letter logits of the options), overall and per task."""
    import torch

    model.eval()
    with torch.inference_mode():
        hits = np.concatenate([option_hits(forward(model, batch)[0], batch) for batch in held_out])
    return float(hits.mean()), {t: float(hits[tasks == t].mean()) for t in sorted(set(tasks))}


def _save(model, processor, out: Path, info: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / TRAINING_FILE).write_text(json.dumps(info, indent=1))
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the folder is shipped
        for path in staging.iterdir():
            os.chmod(path, 0o644)
        if out.exists():
            shutil.rmtree(out)
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def record_evaluation(folder: str | os.PathLike, evaluation: "Evaluation") -> None:
    """Add a held-out evaluation to the model folder's training record."""
    path = Path(folder) / TRAINING_FILE
    info = json.loads(path.read_text()) if path.is_file() else {}
    info["evaluation"] = asdict(evaluation)
    path.write_text(json.dumps(info, indent=1))


def history_table(runs: list[dict[str, Any]]) -> str:
    """Markdown: per training run, its held-out checks (step: accuracy, 48 questions of
    ``held_out_frames`` frames, 32 unless recorded) and where it ended; ``runs`` as in a training record
    or ``benchmarks/demo_realistic_training.json`` (``name``, ``history``)."""
    lines = ["| run | held-out frames | held-out accuracy at step (48 questions) | last check |", "|---|---|---|---|"]
    for run in runs:
        history = run["history"]
        checks = ", ".join(f"{h['step']}: {h['held_out_accuracy']:.2f}" for h in history)
        last = history[-1]
        tasks = ", ".join(f"{t} {a:.2f}" for t, a in sorted(last["per_task"].items()))
        lines.append(f"| {run['name']} | {run.get('held_out_frames', 32)} | {checks} | **{last['held_out_accuracy']:.2f}** "
                     f"after {last['seconds'] / 60:.0f} min ({tasks}) |")
    return "\n".join(lines) + "\n"
