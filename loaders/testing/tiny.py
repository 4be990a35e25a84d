"""Tiny random models of the *real* transformers classes, built offline, for tests and benchmarks.

:func:`build_tiny_model` writes a folder with ``save_pretrained`` (model + processor + tokenizer), so
``Loader.load(folder)`` runs exactly the code a real checkpoint runs. Nothing is downloaded:

* the tokenizer is a ``tokenizers`` WordLevel model whose vocabulary covers the fixed prompt words of
  the ``pollard2025`` protocol (system prompts, instruction, ChatML markers), the letters ``A``–``Y``
  (25 options, enough for ``hard_20`` variants of 5-option benchmarks), digits and punctuation; any other
  word becomes ``[UNK]`` (masking it still changes the sequence, which is all the tests need);
* model weights are random, drawn from ``seed`` (same seed, same folder contents);
* processors are the real ones (``LlavaOnevisionProcessor``, ``Qwen2_5_VLProcessor``,
  ``VideoLlama3Processor``) configured for small frames.

Each family's recipe lives in its own module (the function its ``declare_family(..., tiny=...)`` names,
``f(tokenizer, realistic) -> (model, processor)``); this module holds what they share (the tokenizers,
the chat template, :func:`randomise`) and the build-and-cache machinery, so ``tiny-random/<family>``
works for every family that declares a builder (:func:`tiny_families`).

``realistic=True`` gives realistic *proportions* (LLaVA-OneVision: 36 LM tokens from 144 vision patches
per frame, vision tower as wide and deep as the LM; with 32 frames and the paper's prompt that is
~1150 video tokens and ~180 text tokens) so the loader benchmark measures where time really goes
(vision tower vs LM prefix vs text suffix). The other families get a wider LM and larger frames.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

#: Bumped whenever a recipe changes, so cached folders of an older recipe are rebuilt.
RECIPE_VERSION = 2

#: Letters the tiny tokenizer knows as single tokens, hence the tiny models' ``max_options``.
TINY_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXY"

_SPECIAL_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<image>", "<video>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)

# The fixed words of the pollard2025 prompts (system prompts, instruction) plus common question words. Everything
# else maps to [UNK]; that is fine for random models.
_PROMPT_TEXT = """
system user assistant
You are an expert video analyser, and your job is to answer the multiple choice question by giving only
the letter identifying the answer. Do not give any other information. For example, acceptable answers are
'A' or 'B' or 'C' etc.. You must give an answer, even if you are not sure.
Videos are at 1 fps, and timestamps are MM:SS. Bounding boxes are in the format (ymin, xmin, ymax, xmax)
relative to an image size of 1000x1000.
Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement
of objects and the action and pose of persons. Based on your observations, select the best option that
accurately addresses the question.
Select the best answer to the following multiple-choice question based on the video.
Options: Answer with the option's letter from the given choices directly and only give the best option.
The best answer is:
video image Time s frame frames input inputs
what which who where when why how is are was were did does do the a an of in on to at from with and or
not it its this that these those he she they his her their c person man woman people hand hands
cup bowl knife plate table pan spoon fork door fridge water food object objects kitchen room left right
up down before after first last next then open close opened closed take took put picked pick place
placed cut wash washed move moved turn turned hold held use used doing does happen happened happens
colour color red green blue yellow black white many much number times count
"""


def _vocab(extra_words: tuple[str, ...] = ()) -> dict[str, int]:
    import re

    words: list[str] = ["[UNK]", "<|pad|>", *_SPECIAL_TOKENS]
    words += list(TINY_LETTERS) + [str(d) for d in range(10)]
    words += list(".,!?;:\"'/()_-<>[]{}%&*+=#@$|\\`~^")
    # extra words (e.g. the synthetic benchmark's) come last, so the base ids never change
    for w in re.findall(r"[A-Za-z]+", _PROMPT_TEXT + " " + " ".join(extra_words)):
        words += [w, w.lower(), w.capitalize()]
    vocab: dict[str, int] = {}
    for w in words:
        vocab.setdefault(w, len(vocab))
    return vocab


#: A ChatML (Qwen-style) template, so ``apply_chat_template`` works on the tiny processors too.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% elif item['type'] == 'video' %}{{ video_placeholder }}"
    "{% elif item['type'] == 'image' %}{{ image_placeholder }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CHAT_TEMPLATE = CHAT_TEMPLATE  # the name tests imported


def build_tokenizer(extra_words: tuple[str, ...] = ()):
    """The tiny offline tokenizer (a ``PreTrainedTokenizerFast`` around a WordLevel model).

    Args:
        extra_words: words to add to the vocabulary (each also lower-cased and capitalised), after
            the base vocabulary, e.g. the synthetic benchmark's words for the demo model.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(_vocab(tuple(extra_words)), unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(),
         pre_tokenizers.Digits(individual_digits=True)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="<|pad|>", eos_token="<|im_end|>",
        additional_special_tokens=list(_SPECIAL_TOKENS),
    )
    fast.padding_side = "left"
    return fast


def template(video: str, image: str) -> str:
    """:data:`CHAT_TEMPLATE` with the processor's video and image placeholder text."""
    return CHAT_TEMPLATE.replace("{{ video_placeholder }}", video).replace("{{ image_placeholder }}", image)


def tiny_families() -> tuple[str, ...]:
    """The families that declare a tiny-model builder, sorted."""
    from vqa_shap.families import families

    return tuple(sorted(name for name, family in families().items() if family.tiny))


def tiny_builder(family: str):
    """The tiny-model builder ``f(tokenizer, realistic) -> (model, processor)`` declared by ``family``.

    Raises:
        VqaShapError: ``family`` is unknown or declares no tiny model (the message lists those that do).
    """
    from vqa_shap.errors import VqaShapError
    from vqa_shap.families import families

    declared = families().get(family)
    if declared is None or not declared.tiny:
        raise VqaShapError(f"no tiny model for family {family!r}; valid: {', '.join(tiny_families())}")
    return getattr(importlib.import_module(declared.module), declared.tiny)


def __getattr__(name: str):
    if name == "TINY_FAMILIES":  # from the declarations, on use: a new family module adds itself
        return tiny_families()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_tiny_model(family: str, out_dir: str | os.PathLike, *, seed: int = 0, realistic: bool = False) -> Path:
    """Build a tiny random model of ``family``'s real class and save it with its processor.

    Args:
        family: a family whose declaration names a tiny builder (:func:`tiny_families`).
        out_dir: the folder to write (created; an existing complete build is reused).
        seed: weight seed; the same seed gives the same weights.
        realistic: realistic proportions (see the module docstring) for benchmarks.

    Returns:
        ``out_dir`` as a :class:`Path`, loadable with ``get_loader(family).load(out_dir)``.
    """
    import torch

    builder = tiny_builder(family)
    out = Path(out_dir)
    marker = out / "vqa_shap_tiny.json"
    spec = {"family": family, "seed": seed, "realistic": realistic, "recipe": RECIPE_VERSION}
    if _complete(marker, spec):
        return out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tok = build_tokenizer()
        model, processor = builder(tok, realistic)
    model = model.eval()
    # Build beside the target and rename: concurrent builders (parallel test processes) never see
    # a half-written folder, and the first complete build wins.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / marker.name).write_text(json.dumps(spec))
        stale = None
        if out.exists() and not _complete(marker, spec):  # an incomplete or older build: move it aside
            stale = Path(tempfile.mkdtemp(prefix=f".{out.name}-stale-", dir=out.parent))
            try:
                os.rename(out, stale / "old")
            except FileNotFoundError:  # another process moved it already
                pass
        try:
            os.rename(staging, out)
        except OSError:  # another process finished first
            if not _complete(marker, spec):
                raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _complete(marker: Path, spec: dict) -> bool:
    try:
        return json.loads(marker.read_text()) == spec
    except (OSError, ValueError):
        return False


def tiny_model_dir(family: str, *, seed: int = 0, realistic: bool = False, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached folder of a tiny model, built on first use.

    The cache lives in ``cache_dir``, else in ``tiny/`` of :func:`vqa_shap.cache_dir.cache_root`.
    """
    from vqa_shap.cache_dir import cache_root

    root = Path(cache_dir or cache_root())
    name = f"{family}-seed{seed}{'-realistic' if realistic else ''}"
    return build_tiny_model(family, root / "tiny" / name, seed=seed, realistic=realistic)


# ---------------------------------------------------------------------------------------------
# Tokenizers of the option-head families (FrozenBiLM: DeBERTa-v2 Unigram; InternVideo: CLIP BPE)
# ---------------------------------------------------------------------------------------------

#: Words the tiny FrozenBiLM / InternVideo tokenizers know whole (their prompts + common words).
_OWN_TOKENIZER_WORDS = sorted(set(re.findall(r"[A-Za-z]+", _PROMPT_TEXT + " Question Is it Yes No")))


def build_deberta_tokenizer():
    """A tiny real ``DebertaV2Tokenizer`` (Unigram): whole words, then single characters as fallback."""
    from transformers import DebertaV2Tokenizer

    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("[MASK]", 0.0), ("▁", -8.0)]
    for w in _OWN_TOKENIZER_WORDS:
        vocab += [(f"▁{w}", -5.0), (f"▁{w.lower()}", -5.0), (f"▁{w.capitalize()}", -5.0)]
    vocab += [(c, -10.0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"/()_-<>"]
    seen: set[str] = set()
    vocab = [(p, s) for p, s in vocab if not (p in seen or seen.add(p))]
    return DebertaV2Tokenizer(vocab=vocab)


def build_clip_tokenizer():
    """A tiny real ``CLIPTokenizer`` (byte-level BPE) whose end-of-text token has the highest id, as
    OpenAI's (its argmax-id pooling and transformers' first-EOS pooling then agree)."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"/()_-<>"
    vocab: dict[str, int] = {}
    for c in letters:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    # sorted: set order follows PYTHONHASHSEED, and the merge order is the BPE priority
    for w in sorted({w.lower() for w in _OWN_TOKENIZER_WORDS if len(w) > 1}):
        prefix = w[0]
        for i, c in enumerate(w[1:], start=1):
            last = i == len(w) - 1
            piece = c + "</w>" if last else c
            merges.append((prefix, piece))
            prefix = prefix + piece
            vocab.setdefault(prefix, len(vocab))
    merges = list(dict.fromkeys(merges))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def randomise(model):
    """Random non-trivial values for parameters that init to constants (LayerNorms, biases, zeros)."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() <= 1 or "embedding" in name or name.endswith(("token", "balance")):
                p.normal_(0.0, 0.5 if p.dim() <= 1 else 0.2)
                if name.endswith(".weight") and p.dim() == 1:  # LayerNorm scales around 1
                    p.add_(1.0)
    return model
