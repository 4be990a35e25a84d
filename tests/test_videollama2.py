"""VideoLLaMA2 rebuilt from transformers parts: original-checkpoint loading, the STC connector and its
per-slice cache, exactness against a naive reference.

The reference is written from the original VideoLLaMA2 code's description on purpose naively: a functional STC connector
(``F.conv2d``/``F.conv3d``/``F.layer_norm`` on the **original** state-dict names, the whole masked video at
once), CLIP and Mistral loaded from the same original names, the tokenizer's chat template split at
``<video>`` by hand, and one full forward per coalition.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import (  # noqa: E402
    VISION_PREFIX, assert_batching_and_prefix_sharing_change_nothing, assert_scores_match_reference,
    explain_end_to_end, hd_epic_question, letter_logits, masked_pixels, naive_splice, random_coalitions, randomise,
    script_main, single_question, torch_threads, write_original,
)
from torch.nn import functional as F  # noqa: E402

from vqa_shap.loaders import get_loader, resolve_model  # noqa: E402
from vqa_shap.loaders.bases.loader import LoaderError  # noqa: E402
from vqa_shap.loaders.testing.tiny import build_tokenizer  # noqa: E402
from vqa_shap.protocol import get_protocol  # noqa: E402

TOL = 1e-5
STC = "model.mm_projector."


_threads = torch_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random VideoLLaMA2 (STC depth 4) written in the original format, and its loader."""
    from vqa_shap.loaders.testing.tiny import _CHAT_TEMPLATE
    from vqa_shap.loaders.videollama2 import build_tiny

    tok = build_tokenizer()
    tok.chat_template = _CHAT_TEMPLATE
    torch.manual_seed(0)
    model, processor = build_tiny(tok)
    randomise(model.eval(), seed=1)
    root = tmp_path_factory.mktemp("videollama2")
    folder, original = write_original(root / "VideoLLaMA2-tiny", model, processor, {
        "model_type": "videollama2_mistral", "architectures": ["Videollama2MistralForCausalLM"],
        "mm_projector_type": "stc_connector", "num_frames": 16})
    loader = get_loader("video_llama2").load(str(folder), dtype="float32", device="cpu", batch_size=4)
    return {"model": model, "processor": processor, "folder": folder, "original": original, "loader": loader}


# ------------------------------------------------------------------------------------- naive reference
def naive_stc(sd: dict, features: torch.Tensor) -> torch.Tensor:
    """The STC connector on ``[T, P, C]`` patch features, functionally, from the original names."""

    def norm_act(x, p, act):
        x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), sd[p + ".bn.weight"], sd[p + ".bn.bias"], 1e-5)
        x = x.permute(0, 3, 1, 2)
        return F.silu(x) if act else x

    def conv(x, p, act=True, depthwise=False):
        w = sd[p + ".conv.weight"]
        y = F.conv2d(x, w, None, padding=w.shape[-1] // 2, groups=x.shape[1] if depthwise else 1)
        return norm_act(y, p, act)

    def block(x, p):
        y = conv(conv(x, p + ".conv1"), p + ".conv2", depthwise=True)
        gate = F.conv2d(F.silu(F.conv2d(y.mean((2, 3), keepdim=True), sd[p + ".se.fc1.weight"], sd[p + ".se.fc1.bias"])),
                        sd[p + ".se.fc2.weight"], sd[p + ".se.fc2.bias"])
        y = conv(y * torch.sigmoid(gate), p + ".conv3", act=False)
        shortcut = conv(x, p + ".downsample", act=False) if p + ".downsample.conv.weight" in sd else x
        return F.silu(y + shortcut)

    def stage(x, p):
        i = 1
        while f"{p}.b{i}.conv1.conv.weight" in sd:
            x = block(x, f"{p}.b{i}")
            i += 1
        return x

    frames, patches, channels = features.shape
    side = int(round(patches ** 0.5))
    maps = stage(features.permute(0, 2, 1).reshape(frames, channels, side, side), STC + "s1")
    video = F.silu(F.conv3d(maps.permute(1, 0, 2, 3)[None], sd[STC + "sampler.0.weight"], sd[STC + "sampler.0.bias"],
                            stride=2, padding=1))[0]                     # [H, S, h, w]
    slices = stage(video.permute(1, 0, 2, 3), STC + "s2")                 # [S, H, h, w]
    tokens = slices.flatten(2).permute(0, 2, 1).reshape(-1, slices.shape[1])  # (t, h, w) order
    hidden = F.gelu(F.linear(tokens, sd[STC + "readout.0.weight"], sd[STC + "readout.0.bias"]))
    return F.linear(hidden, sd[STC + "readout.2.weight"], sd[STC + "readout.2.bias"])


def naive_parts(tiny):
    from transformers import CLIPVisionModel, MistralForCausalLM

    sd, cfg = tiny["original"], tiny["model"].config
    vision = CLIPVisionModel(cfg.vision_config).eval()
    vision.load_state_dict({k[len(VISION_PREFIX):]: v for k, v in sd.items() if k.startswith(VISION_PREFIX)})
    lm = MistralForCausalLM(cfg.text_config).eval()
    lm.load_state_dict({k: v for k, v in sd.items() if k.startswith(("model.embed_tokens", "model.layers",
                                                                     "model.norm", "lm_head"))})
    return vision, lm


def naive_video(tiny, vision, frames, video_keep) -> torch.Tensor:
    """All inputs' frames as one video, masked frames zeroed, through CLIP and the naive STC."""
    pixels = torch.cat(masked_pixels(tiny["processor"], frames, video_keep))
    features = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    return naive_stc(tiny["original"], features)


def naive_scores(tiny, question, plan, frames, masks) -> np.ndarray:
    tokenizer, proto = tiny["processor"].tokenizer, get_protocol()
    vision, lm = naive_parts(tiny)
    n_video, rows = len(plan), []
    with torch.no_grad():
        for mask in masks:
            visual = naive_video(tiny, vision, frames, mask[:n_video])
            prompt = proto.render(question, plan, mask[n_video:])
            system = prompt.system if len(prompt.inputs) == 1 else \
                f"{len(prompt.inputs)} input videos have been concatenated together. {prompt.system}"
            text = tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": "<video>\n" + prompt.instruction}],
                tokenize=False, add_generation_prompt=True)
            embeds = naive_splice(tokenizer, tiny["original"]["model.embed_tokens.weight"], text, "<video>", [visual])
            rows.append(letter_logits(tokenizer, lm(inputs_embeds=embeds).logits[0, -1], question.n_options))
    return np.array(rows)


# ------------------------------------------------------------------------------------- tests
def test_connector_keys_are_the_originals(tiny):
    """The STC parameter names are exactly VideoLLaMA2's, and all of them load."""
    expected = {"sampler.0", "readout.0", "readout.2", "s1.b1.downsample.conv", "s1.b1.downsample.bn"}
    for stage, block in itertools.product(("s1", "s2"), range(1, 5)):
        expected |= {f"{stage}.b{block}.{c}.{p}" for c in ("conv1", "conv2", "conv3") for p in ("conv", "bn")}
        expected |= {f"{stage}.b{block}.se.fc1", f"{stage}.b{block}.se.fc2"}
    names = {k[len(STC):].rsplit(".", 1)[0] for k in tiny["original"] if k.startswith(STC)}
    assert names == expected
    loaded = tiny["loader"].model.state_dict()
    assert set(loaded) == set(tiny["model"].state_dict())
    for key, value in tiny["model"].state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_connector_equals_naive_functional_stc(tiny):
    model = tiny["model"]
    features = torch.randn(5, 16, model.config.vision_config.hidden_size)
    with torch.no_grad():
        assert torch.abs(model.mm_projector(features) - naive_stc(tiny["original"], features)).max() <= TOL


@pytest.mark.parametrize("n_frames", [5, 4])
def test_slice_cache_equals_full_connector_for_every_coalition(tiny, n_frames):
    """Odd T: both edge slices hold real frames; even T: the last slice pairs the last frame with padding."""
    loader, model = tiny["loader"], tiny["model"]
    rng = np.random.default_rng(n_frames)
    q, plan, frames = single_question(rng, n_frames=n_frames)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    assert prepared.n_video == n_frames
    worst = 0.0
    with torch.no_grad():
        for keep in itertools.product((False, True), repeat=n_frames):
            keep = np.array(keep)
            pixels = torch.cat(masked_pixels(tiny["processor"], frames, keep))
            worst = max(worst, float(torch.abs(loader._video_embeds(prepared, keep) - model.video_embeds(pixels)).max()))
    assert worst <= TOL
    assert len(prepared.extras["slice_states"]) == n_frames // 2 + 1


@pytest.mark.parametrize("kind", ["single", "hd_epic"])
def test_scores_equal_naive_reference(tiny, kind):
    loader = tiny["loader"]
    rng = np.random.default_rng(11)
    q, plan, frames = (single_question(rng, n_frames=5) if kind == "single" else hd_epic_question(rng))
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = random_coalitions(prepared, rng)
    assert_scores_match_reference(loader, prepared, masks, naive_scores(tiny, q, plan, frames, masks), TOL)


def test_batching_and_prefix_sharing_change_nothing(tiny):
    loader = tiny["loader"]
    rng = np.random.default_rng(12)
    q, plan, frames = hd_epic_question(rng)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    assert_batching_and_prefix_sharing_change_nothing(loader, prepared, random_coalitions(prepared, rng), TOL)


def test_letters_are_the_no_space_pieces_and_the_template_is_required(tiny):
    loader = tiny["loader"]
    rng = np.random.default_rng(13)
    q, _, _ = single_question(rng)
    assert loader.letter_ids(q) == tuple(loader.tokenizer.convert_tokens_to_ids(c) for c in "ABCD")
    tok = build_tokenizer()  # no chat template
    from vqa_shap.loaders.rebuilt.video_causal_lm import VisionTextProcessor

    bare = type(loader)(loader.model, VisionTextProcessor(tok, tiny["processor"].image_processor))
    q, plan, frames = single_question(rng)
    with pytest.raises(LoaderError, match="chat template"):
        bare.prepare(q, frames, plan, get_protocol())


def test_original_folder_resolves_and_converts(tiny, tmp_path):
    from vqa_shap.cli import main  # noqa: F401  (the CLI resolves --model the same way)
    from vqa_shap.loaders.videollama2 import VideoLlama2Loader

    cls, path = resolve_model(str(tiny["folder"]))  # model_type videollama2_mistral
    assert cls is get_loader("video_llama2") and path == str(tiny["folder"])
    out = VideoLlama2Loader.convert(tiny["folder"], tmp_path / "converted", dtype="float32")
    assert json.loads((out / "config.json").read_text())["model_type"] == "videollama2"
    assert resolve_model(str(out))[0] is cls
    converted = cls.load(str(out), dtype="float32", device="cpu")
    rng = np.random.default_rng(14)
    q, plan, frames = single_question(rng, n_frames=3)
    a = tiny["loader"].prepare(q, frames, plan, get_protocol())
    b = converted.prepare(q, frames, plan, get_protocol())
    masks = random_coalitions(a, rng)
    assert np.abs(tiny["loader"].score(a, masks) - converted.score(b, masks)).max() <= TOL
    bad = json.loads((tiny["folder"] / "config.json").read_text())
    broken = tmp_path / "qformer"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({**bad, "mm_projector_type": "spatial_slot"}))
    with pytest.raises(LoaderError, match="mm_projector_type"):
        VideoLlama2Loader.from_original(broken)


def test_explain_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_SHAP_CACHE", str(tmp_path / "cache"))
    explain_end_to_end("video_llama2", tmp_path)


def test_conversion_script_reports_a_bad_checkpoint_cleanly(tmp_path, capsys):
    main = script_main("convert_videollama2.py")
    assert main([str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and not (tmp_path / "out").exists()
