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

``realistic=True`` gives realistic *proportions* (LLaVA-OneVision: 36 LM tokens from 144 vision patches
per frame, vision tower as wide and deep as the LM; with 32 frames and the paper's prompt that is
~1150 video tokens and ~180 text tokens) so the loader benchmark measures where time really goes
(vision tower vs LM prefix vs text suffix). The other families get a wider LM and larger frames.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

#: The families the factory can build (the registry names of the loaders).
TINY_FAMILIES = ("llava_onevision", "qwen2_5_vl", "video_llama3")

#: Bumped whenever a recipe changes, so cached folders of an older recipe are rebuilt.
RECIPE_VERSION = 2

#: Letters the tiny tokenizer knows as single tokens, hence the tiny models' ``max_options``.
TINY_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXY"

_SPECIAL_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<image>", "<video>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)

# The fixed words of the pollard2025 prompts (SEED_SPEC §3.6) plus common question words. Everything
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
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% elif item['type'] == 'video' %}{{ video_placeholder }}"
    "{% elif item['type'] == 'image' %}{{ image_placeholder }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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


def _template(video: str, image: str) -> str:
    return _CHAT_TEMPLATE.replace("{{ video_placeholder }}", video).replace("{{ image_placeholder }}", image)


def llava_onevision_parts(tok, *, image_size: int, patch_size: int, vision_hidden: int, vision_intermediate: int,
                          vision_layers: int, vision_heads: int, hidden: int, layers: int, heads: int = 4,
                          kv_heads: int = 2, **text_kw):
    """The config and the real processor of a small LLaVA-OneVision (SigLIP tower + Qwen2 LM).

    Shared by the tiny random models and the trained demo model (:mod:`vqa_shap.demo.model`).

    Returns:
        ``(LlavaOnevisionConfig, LlavaOnevisionProcessor)``.
    """
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                              LlavaOnevisionVideoProcessor, Qwen2Config, SiglipVisionConfig)

    vision = SiglipVisionConfig(hidden_size=vision_hidden, intermediate_size=vision_intermediate,
                                num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
                                image_size=image_size, patch_size=patch_size, vision_use_head=False)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                       tie_word_embeddings=False, **text_kw)
    config = LlavaOnevisionConfig(
        vision_config=vision, text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full", vision_feature_layer=-1,
        image_grid_pinpoints=[[image_size, image_size]],
    )
    size = {"height": image_size, "width": image_size}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=[[image_size, image_size]]),
        tokenizer=tok, video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=(image_size // patch_size) ** 2, vision_feature_select_strategy="full",
        chat_template=_template("<video>", "<image>"),
    )
    return config, processor


def _llava_onevision(tok, realistic: bool):
    from transformers import LlavaOnevisionForConditionalGeneration

    # 96 px / patch 8 = 12x12 patches, pooled 2x -> 36 tokens per frame (realistic); 32/8 -> 4 tokens.
    # Realistic: the vision tower sees 4x more patches per frame than the LM gets tokens and is as wide
    # and deep as the LM, as in LLaVA-OneVision-0.5B (729 SigLIP patches -> 196 tokens per frame).
    image, patch = (96, 8) if realistic else (32, 8)
    hidden, layers = (128, 3) if realistic else (64, 2)
    config, processor = llava_onevision_parts(
        tok, image_size=image, patch_size=patch, vision_hidden=hidden if realistic else hidden // 2,
        vision_intermediate=2 * hidden, vision_layers=layers, vision_heads=4 if realistic else 2,
        hidden=hidden, layers=layers)
    return LlavaOnevisionForConditionalGeneration(config), processor


def _qwen2_5_vl(tok, realistic: bool):
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import (Qwen2_5_VLTextConfig,
                                                                         Qwen2_5_VLVisionConfig)

    # Frames are resized to side x side; 14-px patches, 2x2 merge: 56 -> 4 tokens per frame pair.
    side = 168 if realistic else 56
    hidden, layers = (128, 4) if realistic else (64, 2)
    vision = Qwen2_5_VLVisionConfig(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                                    spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                                    out_hidden_size=hidden, fullatt_block_indexes=[1], tokens_per_second=2)
    head_dim = hidden // 4
    quarter = head_dim // 2  # mrope sections must sum to head_dim / 2
    mrope = [quarter - 2 * (quarter // 3), quarter // 3, quarter // 3]
    text = Qwen2_5_VLTextConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
                                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                tie_word_embeddings=False)
    cfg = Qwen2_5_VLConfig(
        vision_config=vision.to_dict(), text_config=text.to_dict(),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    pixels = {"shortest_edge": side * side, "longest_edge": side * side}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2,
                                              do_sample_frames=False, cap_pixels_per_frame=True),
        chat_template=_template("<|vision_start|><|video_pad|><|vision_end|>",
                                "<|vision_start|><|image_pad|><|vision_end|>"),
    )
    return model, processor


def _video_llama3(tok, realistic: bool):
    from transformers import (Qwen2Config, VideoLlama3Config, VideoLlama3ForConditionalGeneration,
                              VideoLlama3ImageProcessor, VideoLlama3Processor, VideoLlama3VideoProcessor)
    from transformers.models.video_llama_3.configuration_video_llama_3 import VideoLlama3VisionConfig

    side = 168 if realistic else 56  # 14-px patches, 2x2 merge: 56 -> 4 tokens per frame
    hidden, layers = (128, 4) if realistic else (64, 2)
    vision = VideoLlama3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, patch_size=14)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                       tie_word_embeddings=False)
    cfg = VideoLlama3Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                            image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
                            video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"))
    model = VideoLlama3ForConditionalGeneration(cfg)
    # the video processor divides longest_edge by the frame count: allow up to 8 frames at side x side
    pixels = {"shortest_edge": side * side, "longest_edge": side * side * 8}
    processor = VideoLlama3Processor(
        image_processor=VideoLlama3ImageProcessor(size=pixels, patch_size=14, merge_size=1),
        tokenizer=tok,
        # Token compression drops tokens of frames similar to their predecessor, so a black (masked)
        # frame would change the sequence; loaders switch it off per call anyway (see video_llama3.py).
        video_processor=VideoLlama3VideoProcessor(size=pixels, patch_size=14, merge_size=2,
                                                  use_token_compression=False, do_sample_frames=False),
        chat_template=_template("<|video_pad|>", "<|image_pad|>"),
    )
    return model, processor


_BUILDERS = {"llava_onevision": _llava_onevision, "qwen2_5_vl": _qwen2_5_vl, "video_llama3": _video_llama3}


def build_tiny_model(family: str, out_dir: str | os.PathLike, *, seed: int = 0, realistic: bool = False) -> Path:
    """Build a tiny random model of ``family``'s real class and save it with its processor.

    Args:
        family: one of :data:`TINY_FAMILIES`.
        out_dir: the folder to write (created; an existing complete build is reused).
        seed: weight seed; the same seed gives the same weights.
        realistic: realistic proportions (see the module docstring) for benchmarks.

    Returns:
        ``out_dir`` as a :class:`Path`, loadable with ``get_loader(family).load(out_dir)``.
    """
    import torch

    from vqa_shap.errors import VqaShapError

    if family not in _BUILDERS:
        raise VqaShapError(f"no tiny model for family {family!r}; valid: {', '.join(TINY_FAMILIES)}")
    out = Path(out_dir)
    marker = out / "vqa_shap_tiny.json"
    spec = {"family": family, "seed": seed, "realistic": realistic, "recipe": RECIPE_VERSION}
    if _complete(marker, spec):
        return out
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tok = build_tokenizer()
        model, processor = _BUILDERS[family](tok, realistic)
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

    The cache lives in ``cache_dir``, else ``$VQA_SHAP_CACHE/tiny``, else ``<tmp>/vqa-shap-cache/tiny``.
    """
    root = Path(cache_dir or os.environ.get("VQA_SHAP_CACHE", "") or Path(tempfile.gettempdir()) / "vqa-shap-cache")
    name = f"{family}-seed{seed}{'-realistic' if realistic else ''}"
    return build_tiny_model(family, root / "tiny" / name, seed=seed, realistic=realistic)


# ---------------------------------------------------------------------------------------------
# FrozenBiLM and InternVideo: their own tokenizers (DeBERTa-v2 Unigram, CLIP BPE), built offline
# ---------------------------------------------------------------------------------------------

#: Words the tiny FrozenBiLM / InternVideo tokenizers know whole (their prompts + common words).
_NONNATIVE_WORDS = sorted(set(re.findall(r"[A-Za-z]+", _PROMPT_TEXT + " Question Is it Yes No")))


def build_deberta_tokenizer():
    """A tiny real ``DebertaV2Tokenizer`` (Unigram): whole words, then single characters as fallback."""
    from transformers import DebertaV2Tokenizer

    vocab = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("[MASK]", 0.0), ("▁", -8.0)]
    for w in _NONNATIVE_WORDS:
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
    for w in {w.lower() for w in _NONNATIVE_WORDS if len(w) > 1}:
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


def _frozenbilm(tok, realistic: bool):
    from transformers import CLIPVisionConfig, DebertaV2Config

    from vqa_shap.loaders.frozenbilm import answer_token_ids, build_config, build_model

    tok = build_deberta_tokenizer()
    hidden = 64 if realistic else 32
    text = DebertaV2Config(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=2 * hidden, max_position_embeddings=128, relative_attention=True, position_buckets=16,
        max_relative_positions=-1, pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
        conv_kernel_size=3, conv_act="gelu", position_biased_input=False, type_vocab_size=0,
        layer_norm_eps=1e-7, hidden_act="gelu", pad_token_id=tok.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=8, hidden_act="quick_gelu")
    config = build_config(text, vision, answer_token_ids(tok), ds_factor_attn=4, ds_factor_ff=4, image_size=28)
    return _randomise(build_model(config)), tok


def _randomise(model):
    """Random non-trivial values for parameters that init to constants (LayerNorms, biases, zeros)."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() <= 1 or "embedding" in name or name.endswith(("token", "balance")):
                p.normal_(0.0, 0.5 if p.dim() <= 1 else 0.2)
                if name.endswith(".weight") and p.dim() == 1:  # LayerNorm scales around 1
                    p.add_(1.0)
    return model


# Non-native generative families rebuilt from transformers parts (their builders live in their modules).
def _longva(tok, realistic: bool):
    from vqa_shap.loaders.longva import build_tiny

    return build_tiny(tok, realistic)


def _video_llama2(tok, realistic: bool):
    from vqa_shap.loaders.videollama2 import build_tiny

    tok.chat_template = _CHAT_TEMPLATE  # VideoLLaMA2 renders its prompt with the tokenizer's template
    return build_tiny(tok, realistic)


_BUILDERS.update({"longva": _longva, "video_llama2": _video_llama2})
TINY_FAMILIES += ("longva", "video_llama2")


def _internvideo(tok, realistic: bool):
    from transformers import CLIPTextConfig, CLIPVisionConfig

    from vqa_shap.loaders.internvideo import build_config, build_model

    tok = build_clip_tokenizer()
    width = 64 if realistic else 32
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=3,
                              num_attention_heads=2, image_size=42, patch_size=14, hidden_act="quick_gelu")
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=77, projection_dim=16,
                          hidden_act="quick_gelu", bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    config = build_config(vision, text, n_decoder_layers=2, image_size=42, resize_short=48)
    model = _randomise(build_model(config))
    model.logit_scale.data.fill_(2.0)  # exp(2): scores spread enough to rank options
    return model, tok


_BUILDERS.update({"frozenbilm": _frozenbilm, "internvideo": _internvideo})
TINY_FAMILIES += ("frozenbilm", "internvideo")
