"""The demo model: a small LLaVA-OneVision really trained on the synthetic coloured-shapes benchmark.

``--model demo`` resolves to the committed folder :func:`demo_model_dir` (``loaders/demo_model/``,
shipped as package data): a ``LlavaOnevisionForConditionalGeneration`` with a small config, saved as
safetensors with its tokenizer (the WordLevel tokenizer of :mod:`vqa_shap.loaders.tiny` plus the
synthetic benchmark's words) and its real ``LlavaOnevisionProcessor``. The ``llava_onevision`` loader
loads it like any checkpoint.

It is trained by ``scripts/train_demo_model.py`` (:func:`train`) on questions drawn on the fly from
:func:`vqa_shap.builders.synthetic.sample_items`, with exactly the prompts the loader renders (protocol
``pollard2025``): the target is the answer's letter followed by ``<|im_end|>``, so ``generate`` stops
after the letter as a real instruction-tuned model does. Non-evidence frames are sometimes replaced by
the masking baseline (zero after normalisation), so masked frames are familiar input. Training is
deterministic for a seed and a thread count.

This module imports torch and transformers only inside functions.
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
from typing import Any

import numpy as np

from vqa_shap.errors import VqaShapError

logger = logging.getLogger(__name__)

#: The ``--model`` value that names the demo model.
DEMO_MODEL = "demo"
#: File in the model folder recording how it was trained and how well it does.
TRAINING_FILE = "vqa_shap_training.json"


def demo_model_dir() -> Path:
    """The committed demo model folder (``loaders/demo_model/``).

    Raises:
        VqaShapError: the folder or its weights are missing (train it with scripts/train_demo_model.py).
    """
    from vqa_shap import loaders

    folder = Path(loaders.__file__).resolve().parent / "demo_model"
    if not (folder / "model.safetensors").is_file():
        raise VqaShapError(f"{folder}: the demo model is missing; train it with "
                           f"python scripts/train_demo_model.py --out {folder}")
    return folder


@dataclass(frozen=True)
class DemoArchitecture:
    """The demo model's size: a SigLIP tower and a Qwen2 language model, both small.

    With 64-pixel frames and 16-pixel patches, a frame is 4x4 patches, pooled to 2x2 = 4 video tokens.
    """

    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 64
    vision_layers: int = 2
    hidden: int = 96
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2


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
        n_frames: frames per training video.
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
    # "Which shape was red?" twice as often: looking frames up by colour to read their shape is the
    # step the model learns last (with uniform templates it stayed at ~0.7 while the others were ~1.0)
    templates: tuple[str, ...] = ("colour_of_shape", "shape_of_colour", "shape_of_colour", "shape_shown")

    def __post_init__(self):
        from vqa_shap.builders.synthetic import check_templates

        check_templates(self.templates)
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1 or self.eval_questions < 1:
            raise ValueError("TrainConfig: steps, batch_size, eval_every and eval_questions must be >= 1")
        if not 0.0 <= self.curriculum[0] < self.curriculum[1]:
            raise ValueError(f"TrainConfig.curriculum: need 0 <= start < end, got {self.curriculum}")


#: Seed of the held-out questions used during training (never used for training questions).
HELD_OUT_SEED = 999_983


# ---------------------------------------------------------------------------------------------
# building


def build_demo_model(arch: DemoArchitecture = DemoArchitecture(), seed: int = 0):
    """An untrained demo model and its processor (real transformers classes, built offline).

    Returns:
        ``(model, processor)``.
    """
    import torch
    from transformers import LlavaOnevisionForConditionalGeneration

    from vqa_shap.builders.synthetic import VOCABULARY
    from vqa_shap.loaders.llava_onevision import llava_onevision_parts
    from vqa_shap.loaders.tiny import build_tokenizer

    tok = build_tokenizer(VOCABULARY)
    config, processor = llava_onevision_parts(
        tok, image_size=arch.image_size, patch_size=arch.patch_size, vision_hidden=arch.vision_hidden,
        vision_intermediate=2 * arch.vision_hidden, vision_layers=arch.vision_layers, vision_heads=2,
        hidden=arch.hidden, layers=arch.layers, heads=arch.heads, kv_heads=arch.kv_heads,
        max_position_embeddings=1024)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaOnevisionForConditionalGeneration(config)
        # PyTorch's default init for the projector: with transformers' N(0, 0.02) the projected video
        # tokens hardly vary between frames (what a frame shows is ~1% of the token), a long plateau
        for module in model.model.multi_modal_projector.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, processor


# ---------------------------------------------------------------------------------------------
# batches


class _Encoder:
    """Turns synthetic items into training tensors exactly as the loader will prompt the model.

    Prompts come from the loader's ``prompt_text`` and the protocol's ``render`` (so training and
    inference see the same text); the video placeholder is expanded to the processor's token count and
    frames are normalised as the video processor does (both checked against the processor once).
    """

    def __init__(self, model, processor, n_frames: int):
        from vqa_shap.loaders.llava_onevision import LlavaOnevisionLoader
        from vqa_shap.protocol import FramePlan, FrameRef, get_protocol

        self.loader = LlavaOnevisionLoader(model, processor)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.protocol = get_protocol("pollard2025")
        self.plan = FramePlan(tuple(FrameRef(0, t, float(t)) for t in range(n_frames)))
        self.n_video_tokens = n_frames * self.loader._tokens_per_frame() + 1
        vp = processor.video_processor
        self.mean = np.asarray(vp.image_mean, dtype=np.float32).reshape(1, 1, 3, 1, 1)
        self.std = np.asarray(vp.image_std, dtype=np.float32).reshape(1, 1, 3, 1, 1)
        self.eos = int(self.tokenizer.eos_token_id)
        self.open_id = int(self.tokenizer.convert_tokens_to_ids("("))
        self.close_id = int(self.tokenizer.convert_tokens_to_ids(")"))
        self.checked = False

    def prompt(self, question) -> str:
        n_text = len(self.protocol.text_features(question))
        return self.loader.prompt_text(self.protocol.render(question, self.plan, np.ones(n_text, dtype=bool)))

    def __call__(self, items, rng: np.random.Generator | None = None, frame_dropout: float = 0.0) -> dict:
        """A batch: the shared prompt prefix (system turn, up to the video), and per question the
        suffix (video tokens, instruction, answer letter) right-padded, the frames, and the targets."""
        import torch

        video_id = self.loader.video_token_id
        letters = [self.loader.letters[item.question.answer] for item in items]
        letter_ids = [int(self.tokenizer.convert_tokens_to_ids(letter)) for letter in letters]
        rows = []
        for item, letter in zip(items, letter_ids):
            ids = []
            for i in self.tokenizer(self.prompt(item.question))["input_ids"]:
                ids += [i] * self.n_video_tokens if i == video_id else [i]
            rows.append(ids + [letter])
        split = rows[0].index(video_id)
        if any(r[:split] != rows[0][:split] or r[split:split + self.n_video_tokens] != [video_id] * self.n_video_tokens
               for r in rows):
            raise VqaShapError("demo training: prompts do not share the prefix before the video")
        if not self.checked:
            self._check(items[0], rows[0][:-1])
        length = max(len(r) - split for r in rows)
        suffix = torch.full((len(rows), length), int(self.tokenizer.pad_token_id), dtype=torch.long)
        attention = torch.zeros((len(rows), split + length), dtype=torch.long)
        attention[:, :split] = 1
        for b, ids in enumerate(rows):
            suffix[b, :len(ids) - split] = torch.tensor(ids[split:])
            attention[b, split:len(ids)] = 1
        frames = np.stack([item.frames for item in items]).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0
        pixels = (frames - self.mean) / self.std
        if rng is not None and frame_dropout > 0:
            for b, item in enumerate(items):
                for t in range(pixels.shape[1]):
                    if t not in item.evidence_frames and rng.random() < frame_dropout:
                        pixels[b, t] = 0.0  # the normalized_zero masking baseline
        option_ids = [[self.tokenizer.convert_tokens_to_ids(self.loader.letters[k])
                       for k in range(item.question.n_options)] for item in items]
        # where each option line's first word is ("( A ) Red"): the intermediate targets of training
        word_pos = torch.zeros((len(rows), len(option_ids[0])), dtype=torch.long)
        for b, ids in enumerate(rows):
            suffix_ids = ids[split:]
            for k, letter in enumerate(option_ids[b]):
                at = [i for i in range(len(suffix_ids) - 3) if suffix_ids[i] == self.open_id
                      and suffix_ids[i + 1] == letter and suffix_ids[i + 2] == self.close_id]
                word_pos[b, k] = at[-1] + 3
        answers = torch.tensor([item.question.answer for item in items])
        # the video tokens of the evidence frames (the frame tokens, then the video's newline token)
        per_frame = (self.n_video_tokens - 1) // pixels.shape[1]
        evidence = torch.zeros((len(items), self.n_video_tokens), dtype=torch.bool)
        for b, item in enumerate(items):
            for t in item.evidence_frames:
                evidence[b, t * per_frame:(t + 1) * per_frame] = True
        # what each frame shows, as the option words name it ("Red", "Square"); -100: an empty frame
        shown = torch.full((len(items), pixels.shape[1], 2), -100, dtype=torch.long)
        for b, item in enumerate(items):
            for t, content in enumerate(item.question.extra["frames"]):
                if content is not None:
                    shown[b, t, 0] = self.tokenizer.convert_tokens_to_ids(content["colour"].capitalize())
                    shown[b, t, 1] = self.tokenizer.convert_tokens_to_ids(content["shape"].capitalize())
        return {"prefix": torch.tensor([rows[0][:split]]), "suffix": suffix, "attention_mask": attention,
                "word_pos": word_pos, "shown": shown, "evidence": evidence,
                "answer_word": suffix[torch.arange(len(rows)), word_pos[torch.arange(len(rows)), answers]],
                "read": torch.tensor([len(r) - split - 2 for r in rows]),  # suffix position of the last prompt token
                "n_video": self.n_video_tokens,
                "pixel_values_videos": torch.from_numpy(np.ascontiguousarray(pixels)),
                "letter": torch.tensor(letter_ids), "options": torch.tensor(option_ids),
                "answer": torch.tensor([item.question.answer for item in items])}

    def _check(self, item, ids: list[int]) -> None:
        ref = self.processor(text=[self.prompt(item.question)], videos=[item.frames], return_tensors="pt")
        if ids != ref["input_ids"][0].tolist():
            raise VqaShapError("demo training: prompt token ids differ from the processor's")
        frames = item.frames.transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0
        diff = float(np.abs((frames - self.mean) / self.std - ref["pixel_values_videos"].numpy()).max())
        if diff > 1e-4:
            raise VqaShapError(f"demo training: pixel values differ from the processor's by {diff}")
        self.checked = True


def _forward(model, batch, with_text_loss: bool = False):
    """Logits at the last prompt position (the answer letter) and after the letter (``<|im_end|>``).

    The prompt prefix before the video (system turn) is the same for every question: it runs once and
    its key/value cache is expanded over the batch (prefix sharing, as the loader does at inference).
    """
    import torch
    from transformers import DynamicCache

    from vqa_shap.loaders.base import kv_cache, returned_cache

    lm = model.model.language_model
    embed = model.get_input_embeddings()
    prefix = batch["prefix"]
    config = model.config.get_text_config()
    cache = returned_cache(lm(inputs_embeds=embed(prefix), **kv_cache(lm, DynamicCache(config=config))))
    size, split, n_video = batch["suffix"].shape[0], prefix.shape[1], batch["n_video"]
    shared = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        shape = (size,) + tuple(layer.keys.shape[1:])
        shared.update(layer.keys.expand(shape), layer.values.expand(shape), index)
    video = model.model.get_video_features(batch["pixel_values_videos"]).pooler_output
    embeds = torch.cat([video.to(embed.weight.dtype), embed(batch["suffix"][:, n_video:])], dim=1)
    positions = (split + torch.arange(embeds.shape[1]))[None].expand(size, -1)
    out = lm(inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions,
             **kv_cache(lm, shared), output_hidden_states=with_text_loss,
             output_attentions=with_text_loss)
    hidden = out.last_hidden_state
    rows = torch.arange(size)
    read = batch["read"]
    if not with_text_loss:
        return model.lm_head(hidden[rows, read]), model.lm_head(hidden[rows, read + 1])
    # Auxiliary losses that split the answer into single steps, read through the unembedding of
    # intermediate layers: after layer 1 every option word knows its letter ("( A ) Red" -> A); one
    # layer before the last, the answer position knows the answer word (what the video shows).
    unembed = lambda h: model.lm_head(lm.norm(h))  # noqa: E731
    first, before_last = out.hidden_states[1], out.hidden_states[-2]
    words = batch["word_pos"]
    letter_logits = unembed(first[rows[:, None], words])
    step_loss = torch.nn.functional.cross_entropy(letter_logits.reshape(-1, letter_logits.shape[-1]),
                                                  batch["options"].reshape(-1))
    step_loss = step_loss + torch.nn.functional.cross_entropy(unembed(before_last[rows, read]), batch["answer_word"])
    # supervised attention of one head at the answer position: in layer 2 on the evidence frames'
    # tokens, in the last layer on the right option's word (whose residual holds its letter)
    eps = 1e-6
    look = out.attentions[1][rows, 0, read, split:split + n_video]
    step_loss = step_loss - torch.log((look * batch["evidence"]).sum(-1) + eps).mean()
    answer_key = split + words[rows, batch["answer"]]
    step_loss = step_loss - torch.log(out.attentions[-1][rows, 0, read, answer_key] + eps).mean()
    # and every frame's video tokens, after layer 1, name what the frame shows (LLaVA's alignment
    # stage in miniature: visual tokens that read like the words of the options)
    shown = batch["shown"]
    frames = first[:, :n_video - 1].reshape(size, shown.shape[1], -1, first.shape[-1]).mean(2)
    frame_logits = unembed(frames).reshape(-1, model.lm_head.out_features)
    for k in range(shown.shape[2]):
        step_loss = step_loss + torch.nn.functional.cross_entropy(frame_logits, shown[:, :, k].reshape(-1),
                                                                  ignore_index=-100)
    # next-token loss on the instruction text after the video
    suffix = batch["suffix"]
    targets = suffix[:, n_video + 1:].clone()
    positions = torch.arange(n_video, suffix.shape[1] - 1)[None]
    targets[positions >= read[:, None]] = -100  # the answer is the main loss; padding
    logits = model.lm_head(hidden[:, n_video:-1])
    text_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=-100)
    return model.lm_head(hidden[rows, read]), model.lm_head(hidden[rows, read + 1]), text_loss + step_loss


def _option_hits(letter_logits, batch) -> np.ndarray:
    """Per question: whether the answer's letter has the highest logit among the options' letters."""
    import torch

    scores = torch.gather(letter_logits, 1, batch["options"])
    return (scores.argmax(1) == batch["answer"]).numpy()


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
          progress: bool = True) -> TrainResult:
    """Train the demo model on freshly drawn synthetic questions and save it to ``out``.

    Args:
        out: the model folder to write (replaced atomically when the run ends).
        config: training settings.
        arch: model size.
        resume: a model folder written by an earlier run to continue from (its weights; the
            optimiser restarts with a fresh warm-up, and the question seed is offset by its steps).
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
        return _train(Path(out), config, arch, resume, progress)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train(out: Path, config: TrainConfig, arch: DemoArchitecture, resume: str | os.PathLike | None,
           progress: bool) -> TrainResult:
    import torch
    from tqdm.auto import tqdm

    from vqa_shap.builders.synthetic import DISTRACTOR_P, sample_items

    model, processor = build_demo_model(arch, config.seed)
    earlier: dict[str, Any] = {}
    if resume is not None:
        model = type(model).from_pretrained(str(resume), dtype=torch.float32)
        earlier = json.loads((Path(resume) / TRAINING_FILE).read_text())
    model.set_attn_implementation("eager")  # attention weights for the supervised-attention loss
    offset = int(earlier.get("total_steps", earlier.get("steps", 0)))
    encoder = _Encoder(model, processor, config.n_frames)
    held_out_items = list(sample_items(config.eval_questions, seed=HELD_OUT_SEED, n_frames=config.n_frames))
    held_out, held_out_tasks = encoder(held_out_items), np.array([item.question.task for item in held_out_items])
    rng = np.random.default_rng(config.seed)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                               {"params": other, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        progress_ = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, progress_))))

    history: list[dict[str, float]] = []
    started = time.perf_counter()
    stopped, streak, accuracy, step = "steps", 0, 0.0, 0
    bar = tqdm(total=config.steps, desc="train demo model", unit="step", disable=not progress)
    running = None
    for step in range(1, config.steps + 1):
        model.train()
        # curriculum: videos without distractor shapes first, then the benchmark's mix
        ramp = min(1.0, max(0.0, (step / config.steps - config.curriculum[0]) / (config.curriculum[1] - config.curriculum[0])))
        items = sample_items(config.batch_size, seed=config.seed * 1_000_003 + offset + step, n_frames=config.n_frames,
                             distractor_p=ramp * DISTRACTOR_P, templates=config.templates)
        batch = encoder(list(items), rng, config.frame_dropout)
        for group in optim.param_groups:
            group["lr"] = lr_at(step - 1)
        letter_logits, eos_logits, text_loss = _forward(model, batch, with_text_loss=True)
        loss = (torch.nn.functional.cross_entropy(letter_logits, batch["letter"])
                + torch.nn.functional.cross_entropy(eos_logits, torch.full_like(batch["letter"], encoder.eos))
                + config.text_loss_weight * text_loss)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        value = float(loss.detach())
        running = value if running is None else 0.95 * running + 0.05 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.3f}", acc=f"{accuracy:.3f}", refresh=False)
        elapsed = time.perf_counter() - started
        if step % config.eval_every == 0 or step == config.steps or elapsed > 60 * config.max_minutes:
            model.eval()
            with torch.inference_mode():
                hits = _option_hits(_forward(model, held_out)[0], held_out)
            accuracy = float(hits.mean())
            per_task = {t: float(hits[held_out_tasks == t].mean()) for t in sorted(set(held_out_tasks))}
            history.append({"step": step, "loss": running, "held_out_accuracy": accuracy, "per_task": per_task,
                            "seconds": elapsed})
            tasks = ", ".join(f"{t} {a:.2f}" for t, a in per_task.items())
            logger.info("step %d loss %.4f held-out accuracy %.3f (%s; %.0f s)", step, running, accuracy, tasks, elapsed)
            if progress:
                bar.write(f"step {step}: loss {running:.4f}, held-out accuracy {accuracy:.3f} ({tasks}), {elapsed:.0f} s")
            streak = streak + 1 if accuracy >= config.target_accuracy else 0
            if streak >= 2:
                stopped = "target"
                break
            if elapsed > 60 * config.max_minutes:
                stopped = "time"
                break
    bar.close()
    seconds = time.perf_counter() - started
    model.eval()
    model.set_attn_implementation("sdpa")
    result = TrainResult(out, step, seconds, accuracy, history, stopped)
    runs = list(earlier.get("runs", [])) + [{"train_config": asdict(config), "steps": step, "train_seconds": seconds,
                                             "stopped": stopped, "history": history}]
    _save(model, processor, out, {"architecture": asdict(arch), "runs": runs,
                                        "total_steps": offset + step,
                                        "train_seconds": sum(r["train_seconds"] for r in runs),
                                        "held_out_accuracy": accuracy, "held_out_seed": HELD_OUT_SEED,
                                        "torch_threads": config.threads})
    return result


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


# ---------------------------------------------------------------------------------------------
# evaluation through the real inference path


@dataclass(frozen=True)
class Evaluation:
    """Held-out accuracy of a model on synthetic questions, through files, loader and protocol.

    Attributes:
        n_questions: questions evaluated.
        seed: their generation seed.
        accuracy: share answered correctly (argmax of the option-letter logits).
        per_task: accuracy per question template.
        seconds: wall time (generation, decoding, scoring).
    """

    n_questions: int
    seed: int
    accuracy: float
    per_task: dict[str, float]
    seconds: float


def evaluate(model: str | os.PathLike | None = None, n_questions: int = 60, *, seed: int = 12345,
             workdir: str | os.PathLike | None = None, loader=None, threads: int | None = None) -> Evaluation:
    """Accuracy of the demo model (or ``model``) on freshly generated synthetic questions.

    The questions are written as videos, built with the ``synthetic`` builder, decoded and scored with
    the ``llava_onevision`` loader (``score`` of the all-kept coalition) — the path ``explain`` uses.

    Args:
        model: a model folder (default :func:`demo_model_dir`).
        n_questions: questions to generate.
        seed: their seed. Training draws step ``i``'s questions from seed ``1_000_003 * seed + i``, so
            with seed 0 it uses seeds below its step count; the default 12345 is held out.
        workdir: where to write the videos (default: a temporary folder, removed afterwards).
        loader: an already loaded loader (then ``model`` is ignored).
        threads: torch CPU threads (default: leave as is).
    """
    import torch

    from vqa_shap.builders import get_builder
    from vqa_shap.builders.synthetic import N_FRAMES, generate_source
    from vqa_shap.loaders import get_loader
    from vqa_shap.protocol import get_protocol

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    if loader is None:
        loader = get_loader("llava_onevision").load(str(model or demo_model_dir()), device="cpu", dtype="float32")
    protocol = get_protocol("pollard2025")
    tmp = None if workdir is not None else tempfile.mkdtemp(prefix="vqa_shap_eval_")
    root = Path(workdir or tmp)
    try:
        generate_source(root, n_questions, seed=seed)
        questions = get_builder("synthetic").build(root).configs["synthetic"]
        right: dict[str, list[bool]] = {}
        for question in questions:
            plan = protocol.plan_frames(question, root, N_FRAMES, loader_family=loader.family)
            frames = protocol.load_frames(question, root, plan)
            prepared = loader.prepare(question, frames, plan, protocol)
            scores = loader.score(prepared, np.ones((1, prepared.n_features), dtype=bool))[0]
            right.setdefault(question.task, []).append(int(np.argmax(scores)) == question.answer)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    flat = [r for rs in right.values() for r in rs]
    return Evaluation(len(flat), seed, float(np.mean(flat)), {t: float(np.mean(r)) for t, r in right.items()},
                      time.perf_counter() - started)


__all__ = ["DEMO_MODEL", "DemoArchitecture", "TrainConfig", "TrainResult", "Evaluation", "demo_model_dir",
           "build_demo_model", "train", "evaluate", "record_evaluation", "HELD_OUT_SEED"]
