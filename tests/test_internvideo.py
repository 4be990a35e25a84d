"""InternVideo loader: OpenAI/InternVideo key maps, the WiSE-FT merge, and scores against a naive reference.

The reference is written here from the original InternVideo code's description, independently of the
loader and of transformers' CLIP: an OpenAI-style ViT over the (L, N*T, C) token layout with packed
``in_proj`` attention, the UniFormerV2-style decoder with explicit cross-attention, and OpenAI's text
tower (77-token context padded with 0, causal mask, argmax-id pooling). It reads the merged
original-named state dict and runs one coalition at a time on pixel-masked frames.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402
from helpers import (assert_bad_inputs_raise_clear_errors, assert_same_scores, random_masks,  # noqa: E402
                     run_script, torch_threads)
from transformers import CLIPTextConfig, CLIPVisionConfig  # noqa: E402

from vqa_shap.loaders.bases.loader import LoaderError, UnsupportedQuestionError  # noqa: E402
from vqa_shap.loaders.internvideo import InternVideoLoader
from vqa_shap.loaders.rebuilt.internvideo_model import build_config
from vqa_shap.loaders.rebuilt.internvideo_convert import (load_original, map_original_keys, openai_to_internvideo,
                                                  read_original, wiseft_merge)
from vqa_shap.loaders.testing.tiny import build_clip_tokenizer  # noqa: E402
from vqa_shap.protocol.base import FramePlan, FrameRef
from vqa_shap.protocol import get_protocol
from vqa_shap.protocol.words import join_words  # noqa: E402
from vqa_shap.schema.records import Question, VisualInput  # noqa: E402

TOL = 1e-5
W, HEADS, VIS_LAYERS, TEXT_W, TEXT_LAYERS, EMBED, N_DEC = 128, 2, 13, 128, 2, 16, 2
PATCH, SIZE = 14, 42  # 3x3 patches per frame
T = 5


_threads = torch_threads(2)
_coalitions = partial(random_masks, seed=2)


def _blocks(prefix: str, n: int, width: int) -> dict:
    shapes = {}
    for i in range(n):
        p = f"{prefix}resblocks.{i}."
        shapes.update({p + "attn.in_proj_weight": (3 * width, width), p + "attn.in_proj_bias": (3 * width,),
                       p + "attn.out_proj.weight": (width, width), p + "attn.out_proj.bias": (width,),
                       p + "ln_1.weight": (width,), p + "ln_1.bias": (width,), p + "ln_2.weight": (width,),
                       p + "ln_2.bias": (width,), p + "mlp.c_fc.weight": (4 * width, width),
                       p + "mlp.c_fc.bias": (4 * width,), p + "mlp.c_proj.weight": (width, 4 * width),
                       p + "mlp.c_proj.bias": (width,)})
    return shapes


def _random(shapes: dict, gen) -> dict:
    out = {}
    for k, s in shapes.items():
        v = torch.randn(s, generator=gen) * (0.5 if len(s) == 1 else 0.1)
        if k.endswith(".weight") and len(s) == 1:
            v += 1.0
        out[k] = v
    return out


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """OpenAI-format pretrained CLIP + a ``clip.``-prefixed Lightning fine-tune, random, 13 visual blocks."""
    root = tmp_path_factory.mktemp("iv_original")
    gen = torch.Generator().manual_seed(0)
    tok = build_clip_tokenizer()
    vocab, grid = len(tok), SIZE // PATCH
    shared = {"visual.class_embedding": (W,), "visual.positional_embedding": (grid * grid + 1, W),
              "visual.ln_pre.weight": (W,), "visual.ln_pre.bias": (W,), "token_embedding.weight": (vocab, TEXT_W),
              "positional_embedding": (77, TEXT_W), "ln_final.weight": (TEXT_W,), "ln_final.bias": (TEXT_W,),
              "text_projection": (TEXT_W, EMBED), "logit_scale": ()}
    shared.update(_blocks("visual.transformer.", VIS_LAYERS, W))
    shared.update(_blocks("transformer.", TEXT_LAYERS, TEXT_W))
    openai = {**shared, "visual.conv1.weight": (W, 3, PATCH, PATCH), "visual.ln_post.weight": (W,),
              "visual.ln_post.bias": (W,), "visual.proj": (W, EMBED)}
    finetune = {**shared, "visual.conv1.weight": (W, 3, 1, PATCH, PATCH), "visual_ln_post.weight": (W,),
                "visual_ln_post.bias": (W,), "visual_proj": (W, EMBED), "text_mask_embedding": (TEXT_W,),
                "visual.transformer.temporal_cls_token": (1, 1, W), "visual.transformer.balance": (W,)}
    for j in range(N_DEC):
        d = f"visual.transformer.dec.{j}."
        finetune.update({f"visual.transformer.dpe.{j}.weight": (W, 1, 3, 3, 3),
                         f"visual.transformer.dpe.{j}.bias": (W,),
                         d + "attn.in_proj_weight": (3 * W, W), d + "attn.in_proj_bias": (3 * W,),
                         d + "attn.out_proj.weight": (W, W), d + "attn.out_proj.bias": (W,),
                         d + "mlp.c_fc.weight": (4 * W, W), d + "mlp.c_fc.bias": (4 * W,),
                         d + "mlp.c_proj.weight": (W, 4 * W), d + "mlp.c_proj.bias": (W,),
                         **{d + f"ln_{i}.{p}": (W,) for i in (1, 2, 3) for p in ("weight", "bias")}})
    openai = _random(openai, gen)
    openai.update({"input_resolution": torch.tensor(SIZE), "context_length": torch.tensor(77),
                   "vocab_size": torch.tensor(vocab)})
    finetune = _random(finetune, gen)
    finetune["logit_scale"] = torch.tensor(3.0)
    torch.save(openai, root / "ViT-L-14.pt")
    lightning = {"state_dict": {**{f"clip.{k}": v for k, v in finetune.items()},
                                "head.weight": torch.zeros(3)},  # another task's head: ignored
                 "epoch": 2}
    torch.save(lightning, root / "MSRVTT.ckpt")
    tok.save_pretrained(root / "tokenizer")
    return {"root": root, "openai": openai, "finetune": finetune, "tok": tok}


def _config(tok):
    vision = CLIPVisionConfig(hidden_size=W, intermediate_size=4 * W, num_hidden_layers=VIS_LAYERS,
                              num_attention_heads=HEADS, image_size=SIZE, patch_size=PATCH, hidden_act="quick_gelu")
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=TEXT_W, intermediate_size=4 * TEXT_W,
                          num_hidden_layers=TEXT_LAYERS, num_attention_heads=HEADS, max_position_embeddings=77,
                          projection_dim=EMBED, hidden_act="quick_gelu", bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return build_config(vision, text, n_decoder_layers=N_DEC, image_size=SIZE, resize_short=48)


@pytest.fixture(scope="module")
def loader(original):
    model = load_original(original["root"] / "ViT-L-14.pt", original["root"] / "MSRVTT.ckpt",
                          config=_config(original["tok"]))
    return InternVideoLoader(model, original["tok"], checkpoint="original", batch_size=3)


def _merged(original) -> dict:
    return wiseft_merge(openai_to_internvideo(original["openai"]), original["finetune"])


def _question(options=("Cut the cup", "Wash the plate with water", "Open the fridge door"), question=None):
    rng = np.random.default_rng(5)
    q = Question("q1", "egoschema", "t", question or "What is the man doing with the cup", tuple(options), 1,
                 (VisualInput("video", "v.mp4"),))
    plan = FramePlan(tuple(FrameRef(0, i, float(i)) for i in range(T)))
    return q, plan, [rng.integers(0, 256, (T, 36, 44, 3), dtype=np.uint8)]


# ---------------------------------------------------------------------------------- naive reference
class NaiveInternVideo:
    """InternVideo from the original code's description, OpenAI-style, on the merged original-named state dict."""

    def __init__(self, state, tok):
        self.s, self.tok = state, tok

    def _block(self, x, p, causal=None):
        s = self.s
        h = F.layer_norm(x, x.shape[-1:], s[p + "ln_1.weight"], s[p + "ln_1.bias"], 1e-5)
        a, _ = F.multi_head_attention_forward(h, h, h, x.shape[-1], HEADS, s[p + "attn.in_proj_weight"],
                                              s[p + "attn.in_proj_bias"], None, None, False, 0.0,
                                              s[p + "attn.out_proj.weight"], s[p + "attn.out_proj.bias"],
                                              training=False, need_weights=False, attn_mask=causal)
        x = x + a
        h = F.layer_norm(x, x.shape[-1:], s[p + "ln_2.weight"], s[p + "ln_2.bias"], 1e-5)
        h = h @ s[p + "mlp.c_fc.weight"].T + s[p + "mlp.c_fc.bias"]
        h = h * torch.sigmoid(1.702 * h)
        return x + h @ s[p + "mlp.c_proj.weight"].T + s[p + "mlp.c_proj.bias"]

    def video(self, pixels):  # pixels [T, 3, S, S] (masked frames already zeroed)
        s = self.s
        t = pixels.shape[0]
        x = F.conv3d(pixels.permute(1, 0, 2, 3)[None], s["visual.conv1.weight"], stride=(1, PATCH, PATCH))
        x = x[0].flatten(2).permute(1, 2, 0)                      # [T, HW, C]
        x = torch.cat([s["visual.class_embedding"].expand(t, 1, W), x], 1) + s["visual.positional_embedding"]
        x = F.layer_norm(x, (W,), s["visual.ln_pre.weight"], s["visual.ln_pre.bias"], 1e-5)
        x = x.permute(1, 0, 2)                                   # (L, N*T, C), N = 1
        length = x.shape[0]
        query = s["visual.transformer.temporal_cls_token"].reshape(1, 1, W)  # (1, N, C)
        j = 0
        for i in range(VIS_LAYERS):
            x = self._block(x, f"visual.transformer.resblocks.{i}.")
            if i >= VIS_LAYERS - N_DEC:
                tokens = x.clone()                               # (L, T, C)
                grid = SIZE // PATCH
                feats = tokens[1:].permute(2, 1, 0).reshape(1, W, t, grid, grid)  # (N, C, T, H, W)
                conv = F.conv3d(feats, s[f"visual.transformer.dpe.{j}.weight"], s[f"visual.transformer.dpe.{j}.bias"],
                                padding=1, groups=W)
                tokens[1:] = tokens[1:] + conv.reshape(W, t, length - 1).permute(2, 1, 0)
                kv = tokens.permute(1, 0, 2).reshape(t * length, 1, W)   # all frames' tokens
                query = self._extract(query, kv, f"visual.transformer.dec.{j}.")
                j += 1
        w = torch.sigmoid(s["visual.transformer.balance"])
        mixed = (1 - w) * query[0, 0] + w * x[0].mean(0)          # final CLS mean over frames
        mixed = F.layer_norm(mixed, (W,), s["visual_ln_post.weight"], s["visual_ln_post.bias"], 1e-5)
        return mixed @ s["visual_proj"]

    def _extract(self, q, y, p):
        s = self.s
        ln = lambda v, n: F.layer_norm(v, (W,), s[f"{p}ln_{n}.weight"], s[f"{p}ln_{n}.bias"], 1e-5)  # noqa: E731
        wq, wk, wv = s[p + "attn.in_proj_weight"].chunk(3)
        bq, bk, bv = s[p + "attn.in_proj_bias"].chunk(3)
        qq, yy = ln(q, 1), ln(y, 3)
        head = W // HEADS
        qh = (qq @ wq.T + bq).reshape(-1, HEADS, head).transpose(0, 1)   # [H, 1, d]
        kh = (yy @ wk.T + bk).reshape(-1, HEADS, head).transpose(0, 1)
        vh = (yy @ wv.T + bv).reshape(-1, HEADS, head).transpose(0, 1)
        att = ((qh @ kh.transpose(-1, -2)) / math.sqrt(head)).softmax(-1) @ vh
        out = att.transpose(0, 1).reshape(1, 1, W) @ s[p + "attn.out_proj.weight"].T + s[p + "attn.out_proj.bias"]
        q = q + out
        h = ln(q, 2) @ s[p + "mlp.c_fc.weight"].T + s[p + "mlp.c_fc.bias"]
        return q + (h * torch.sigmoid(1.702 * h)) @ s[p + "mlp.c_proj.weight"].T + s[p + "mlp.c_proj.bias"]

    def text(self, text):
        s = self.s
        ids = self.tok(text)["input_ids"]
        if len(ids) > 77:  # OpenAI's clip.tokenize(truncate=True)
            ids = ids[:77]
            ids[-1] = self.tok.eos_token_id
        tokens = torch.zeros(77, dtype=torch.long)
        tokens[:len(ids)] = torch.tensor(ids)
        x = (s["token_embedding.weight"][tokens] + s["positional_embedding"])[:, None]  # (77, 1, W)
        causal = torch.full((77, 77), float("-inf")).triu(1)
        for i in range(TEXT_LAYERS):
            x = self._block(x, f"transformer.resblocks.{i}.", causal)
        x = F.layer_norm(x[:, 0], (TEXT_W,), s["ln_final.weight"], s["ln_final.bias"], 1e-5)
        return x[tokens.argmax()] @ s["text_projection"]

    def score(self, loader, question, frames, mask, n_video):
        pixels = loader.pixel_values(frames[0]).clone()
        pixels[torch.as_tensor(~mask[:n_video])] = 0.0  # the paper's masked frame: zero normalised pixels
        video = self.video(pixels)
        segments = get_protocol().word_segments(question)
        keep, texts, offset = mask[n_video:], [], 0
        for words in segments:
            texts.append(join_words(words, keep[offset:offset + len(words)]))
            offset += len(words)
        slots = (texts[1:] + [texts[-1]] * 5)[:5]  # the paper's 5 slots
        scale = min(float(self.s["logit_scale"]), math.log(100))
        out = []
        for o in slots:
            t = self.text(f"Question: {texts[0]} Is it '{o}'?.")
            out.append(math.exp(scale) * float(F.cosine_similarity(video, t, dim=0)))
        return out[:len(texts) - 1]


# ---------------------------------------------------------------------------------- tests
def test_wiseft_merge_follows_the_rule_key_by_key(original):
    pre = openai_to_internvideo(original["openai"])
    ft = original["finetune"]
    merged = wiseft_merge(pre, ft)
    assert set(merged) == set(ft)
    averaged = []
    for key, value in merged.items():
        visual_block = key.startswith("visual.transformer.resblocks.")
        block = int(key.split(".")[3]) if visual_block else None
        expect_avg = (
            key.startswith("transformer.resblocks.")  # text tower: every block
            or key in ("token_embedding.weight", "positional_embedding", "text_projection", "ln_final.weight",
                       "ln_final.bias", "visual.conv1.weight", "visual.class_embedding",
                       "visual.positional_embedding", "visual.ln_pre.weight", "visual.ln_pre.bias",
                       "visual_ln_post.weight", "visual_ln_post.bias", "visual_proj")
            or (visual_block and block <= 11))
        expected = 0.5 * ft[key] + 0.5 * pre[key] if expect_avg else ft[key]
        assert torch.allclose(value, expected, atol=1e-7), key
        averaged += [key] if expect_avg else []
    # blocks 12+, the whole decoder and logit_scale come from the fine-tune alone
    late = "visual.transformer.resblocks.12.ln_1.weight"
    assert torch.equal(merged[late], ft[late])
    assert torch.equal(merged["visual.transformer.dec.0.ln_3.bias"], ft["visual.transformer.dec.0.ln_3.bias"])
    assert float(merged["logit_scale"]) == 3.0
    assert "visual.transformer.resblocks.11.attn.in_proj_weight" in averaged


def test_original_keys_load_with_nothing_missing_or_unexpected(original, loader):
    state = read_original(original["root"] / "ViT-L-14.pt", original["root"] / "MSRVTT.ckpt")
    assert set(state) == set(loader.model.state_dict())
    merged = _merged(original)
    q, k, v = merged["visual.transformer.resblocks.3.attn.in_proj_weight"].chunk(3)
    layer = loader.model.vision.encoder.layers[3].self_attn
    assert torch.equal(layer.k_proj.weight, k) and torch.equal(layer.v_proj.weight, v)
    assert torch.equal(loader.model.visual_proj.weight, merged["visual_proj"].T)
    assert torch.equal(loader.model.vision.embeddings.patch_embedding.weight, merged["visual.conv1.weight"][:, :, 0])
    with pytest.raises(LoaderError, match="unexpected key.*visual.transformer.foo"):
        map_original_keys({**merged, "visual.transformer.foo": torch.zeros(1)})
    with pytest.raises(LoaderError, match="absent from the pretrained"):
        wiseft_merge({}, {"token_embedding.weight": torch.zeros(1)})


def test_scores_equal_naive_pixel_masked_reference(original, loader):
    q, plan, frames = _question()
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = _coalitions(prepared.n_features)
    scores = loader.score(prepared, masks)
    assert scores.shape == (len(masks), 3) and scores.dtype == np.float32
    naive = NaiveInternVideo(_merged(original), original["tok"])
    with torch.inference_mode():
        reference = np.array([naive.score(loader, q, frames, m, T) for m in masks])
    assert np.abs(scores - reference).max() <= TOL
    assert np.abs(scores[0] - scores[1]).max() > 1e-3  # not vacuous
    # the decoder mixes frames: masking one frame moves every option's score
    one_off = masks[0].copy()
    one_off[T // 2] = False
    assert np.abs(loader.score(prepared, one_off[None])[0] - scores[0]).min() > 0


def test_cached_equals_uncached_and_batching(loader):
    q, plan, frames = _question(("Cut the cup", "Open door", "Wash", "Pick up the knife", "Put the pan down"))
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = _coalitions(prepared.n_features, n=5, seed=9)
    cached = loader.score(prepared, masks)
    assert cached.shape == (5, 5)
    assert np.abs(cached - loader.score_pixels(prepared, masks)).max() <= TOL
    loader.batch_size = 1
    try:
        assert np.abs(loader.score(prepared, masks) - cached).max() <= TOL
    finally:
        loader.batch_size = 3


def test_77_token_truncation_and_the_5_option_limit(original, loader):
    long = " ".join(["what is the man doing with the cup"] * 12)  # > 77 CLIP tokens before the options
    q, plan, frames = _question(question=long)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    full = np.ones((1, prepared.n_features), bool)
    scores = loader.score(prepared, full)[0]
    assert np.ptp(scores) == 0  # the options were cut off: identical texts, tied scores (as the paper)
    naive = NaiveInternVideo(_merged(original), original["tok"])
    with torch.inference_mode():
        assert np.abs(scores - naive.score(loader, q, frames, full[0], T)).max() <= TOL
    six = _question(tuple(f"option {i}" for i in range(6)))[0]
    with pytest.raises(UnsupportedQuestionError, match="6 options.*at most 5"):
        loader.prepare(six, frames, plan, get_protocol())


class _Black(type(get_protocol())):
    def frame_baseline(self, loader_family: str) -> str:
        return "black"


def test_black_baseline_and_raw_hd_epic_tags(loader):
    q, plan, frames = _question()
    prepared = loader.prepare(q, frames, plan, _Black())
    assert prepared.baseline == "black"
    masks = _coalitions(prepared.n_features, n=3)
    assert np.abs(loader.score(prepared, masks) - loader.score_pixels(prepared, masks)).max() <= TOL
    tag = "<TIME 00:00:02.000 video 1>"
    hd = Question("hd1", "hd-epic", "t", f"What did he take at {tag}", ("The cup", "The knife"), 0,
                  (VisualInput("video", "P01.mp4", label="video 1"),))
    prepared = loader.prepare(hd, frames, plan, get_protocol())
    # InternVideo's text encoder gets the unparsed masked strings (as the paper)
    texts = loader.prompts(prepared, np.ones(prepared.n_features - T, bool))
    assert texts[0] == f"Question: What did he take at {tag} ? Is it 'The cup'?."


def test_converted_folder_loads_and_scores_the_same(original, loader, tmp_path):
    out = tmp_path / "converted"
    run_script("convert_internvideo.py", "--openai", original["root"] / "ViT-L-14.pt",
               "--checkpoint", original["root"] / "MSRVTT.ckpt", "--tokenizer", original["root"] / "tokenizer",
               "--out", out, "--resize-short", "48")
    q, plan, frames = _question()
    assert_same_scores(loader, InternVideoLoader.load(str(out)), (q, plan, frames),
                       _coalitions(len(get_protocol().features(q, plan)), n=3))


def test_bad_inputs_raise_clear_errors(loader, tmp_path):
    assert_bad_inputs_raise_clear_errors(loader, _question(), tmp_path)
