"""LongVA rebuilt from transformers parts: original-checkpoint loading, exactness against a naive reference.

The reference below is written from the original LongVA code's description on purpose naively: it reads the **original**
state-dict names directly, masks pixels after the CLIP processor, projects with explicit ``F.linear`` calls,
pools 2x2 blocks with an explicit loop, splits the prompt at ``<image>`` itself and runs the whole model per
coalition. The helpers for both generative families (tiny original folders, the naive splice, the explain
run) are here and reused by ``test_videollama2.py``; questions and checks are in ``helpers``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import (VISION_PREFIX, assert_batching_and_prefix_sharing_change_nothing,  # noqa: E402
                     assert_scores_match_reference, explain_end_to_end, hd_epic_question, letter_logits,
                     masked_pixels, naive_splice, random_coalitions, randomise, run_script, single_question,
                     torch_threads, write_original)
from torch.nn import functional as F  # noqa: E402

from vqa_shap.loaders import get_loader, resolve_model  # noqa: E402
from vqa_shap.loaders.bases.loader import LoaderError  # noqa: E402
from vqa_shap.loaders.rebuilt.checkpoints import map_key  # noqa: E402
from vqa_shap.loaders.bases.generative import LLAVA_KEY_RULES, letter_step  # noqa: E402
from vqa_shap.loaders.testing.tiny import build_tokenizer  # noqa: E402
from vqa_shap.protocol import get_protocol  # noqa: E402

TOL = 1e-5


_threads = torch_threads(1)


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random LongVA written in the original format, and its loader."""
    from vqa_shap.loaders.longva import build_tiny

    torch.manual_seed(0)
    model, processor = build_tiny(build_tokenizer())
    randomise(model.eval())
    root = tmp_path_factory.mktemp("longva")
    folder, original = write_original(root / "LongVA-tiny", model, processor, {
        "model_type": "llava_qwen", "architectures": ["LlavaQwenForCausalLM"], "mm_projector_type": "mlp2x_gelu",
        "mm_spatial_pool_stride": 2, "mm_spatial_pool_mode": "average", "mm_patch_merge_type": "unires"})
    loader = get_loader("longva").load(str(folder), dtype="float32", device="cpu", batch_size=4)
    return {"model": model, "processor": processor, "folder": folder, "original": original, "loader": loader,
            "root": root}


def naive_scores(tiny, question, plan, frames, masks) -> np.ndarray:
    """Naive LongVA on masked pixels, from the original-named state dict."""
    from transformers import CLIPVisionModel, Qwen2ForCausalLM

    sd, cfg = tiny["original"], tiny["model"].config
    tokenizer, proto = tiny["processor"].tokenizer, get_protocol()
    vision = CLIPVisionModel(cfg.vision_config).eval()
    vision.load_state_dict({k[len(VISION_PREFIX):]: v for k, v in sd.items() if k.startswith(VISION_PREFIX)})
    lm = Qwen2ForCausalLM(cfg.text_config).eval()
    lm.load_state_dict({k: v for k, v in sd.items() if k.startswith(("model.embed_tokens", "model.layers",
                                                                     "model.norm", "lm_head"))})
    n_video = len(plan)
    rows = []
    with torch.no_grad():
        for mask in masks:
            visual = []
            for p in masked_pixels(tiny["processor"], frames, mask[:n_video]):
                h = vision(pixel_values=p, output_hidden_states=True).hidden_states[-2][:, 1:]
                h = F.linear(F.gelu(F.linear(h, sd["model.mm_projector.0.weight"], sd["model.mm_projector.0.bias"])),
                             sd["model.mm_projector.2.weight"], sd["model.mm_projector.2.bias"])
                side = int(round(h.shape[1] ** 0.5))
                grid = h.view(len(p), side, side, -1)
                pooled = [grid[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean((1, 2))
                          for i in range(side // 2) for j in range(side // 2)]
                visual.append(torch.stack(pooled, 1).flatten(0, 1))
            prompt = proto.render(question, plan, mask[n_video:])
            contents = ("<image>\n" if len(prompt.inputs) == 1
                        else "".join(f"{i.label}: <image>\n" for i in prompt.inputs))
            text = (f"<|im_start|>system\n{prompt.system}<|im_end|>\n<|im_start|>user\n{contents}"
                    f"{prompt.instruction}<|im_end|>\n<|im_start|>assistant\n")
            embeds = naive_splice(tokenizer, sd["model.embed_tokens.weight"], text, "<image>", visual)
            rows.append(letter_logits(tokenizer, lm(inputs_embeds=embeds).logits[0, -1], question.n_options))
    return np.array(rows)


# ------------------------------------------------------------------------------------- tests
def test_key_map_names():
    cases = {
        VISION_PREFIX + "encoder.layers.0.self_attn.q_proj.weight": "vision_tower.encoder.layers.0.self_attn.q_proj.weight",
        VISION_PREFIX + "post_layernorm.bias": "vision_tower.post_layernorm.bias",
        "model.mm_projector.0.weight": "mm_projector.0.weight",
        "model.mm_projector.2.bias": "mm_projector.2.bias",
        "model.embed_tokens.weight": "language_model.model.embed_tokens.weight",
        "model.layers.3.self_attn.q_proj.bias": "language_model.model.layers.3.self_attn.q_proj.bias",
        "model.norm.weight": "language_model.model.norm.weight",
        "lm_head.weight": "language_model.lm_head.weight",
        "model.image_newline": "model.image_newline",  # unknown: unchanged, so reported as unexpected
    }
    for original, ours in cases.items():
        assert map_key(original, LLAVA_KEY_RULES) == ours


def test_original_checkpoint_loads_with_every_key(tiny):
    model, loaded = tiny["model"], tiny["loader"].model
    theirs = loaded.state_dict()
    assert set(theirs) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(theirs[key], value), key
    assert loaded.config.text_config.rope_parameters["rope_theta"] == model.config.text_config.rope_parameters["rope_theta"]


def test_original_checkpoint_key_problems_are_named(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    from vqa_shap.loaders.longva import LongVALoader

    folder = tmp_path / "broken"
    folder.mkdir()
    for f in tiny["folder"].iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    shard = folder / "model-00001-of-00002.safetensors"
    part = load_file(str(shard))
    dropped = sorted(part)[0]
    part.pop(dropped)
    part["model.image_newline"] = torch.zeros(4)
    save_file(part, str(shard))
    with pytest.raises(LoaderError) as info:
        LongVALoader.from_original(folder)
    assert "model.image_newline" in str(info.value) and map_key(dropped, LLAVA_KEY_RULES) in str(info.value)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "mm_spatial_pool_mode": "max"}))
    with pytest.raises(LoaderError, match="mm_spatial_pool_mode"):
        LongVALoader.from_original(folder)
    siglip = tmp_path / "siglip"  # e.g. an original LLaVA-Video checkpoint (same model_type, SigLIP tower)
    siglip.mkdir()
    (siglip / "config.json").write_text(json.dumps({"model_type": "siglip_vision_model"}))
    with pytest.raises(LoaderError, match="not a CLIP model"):
        LongVALoader.from_original(folder, vision_tower=siglip)


def test_vision_tower_weights_from_the_clip_folder(tiny, tmp_path):
    """A checkpoint without the (frozen) tower takes it from the CLIP folder named by mm_vision_tower."""
    from vqa_shap.loaders.longva import LongVALoader

    folder, _ = write_original(tmp_path / "no-tower", tiny["model"], tiny["processor"], {
        "model_type": "llava_qwen", "mm_projector_type": "mlp2x_gelu"}, with_vision=False)
    model, _ = LongVALoader.from_original(folder)
    for key, value in tiny["model"].state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("kind", ["single", "hd_epic"])
def test_scores_equal_naive_reference(tiny, kind):
    loader = tiny["loader"]
    rng = np.random.default_rng(4)
    q, plan, frames = (single_question if kind == "single" else hd_epic_question)(rng)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = random_coalitions(prepared, rng)
    assert_scores_match_reference(loader, prepared, masks, naive_scores(tiny, q, plan, frames, masks), TOL)


def test_batching_and_prefix_sharing_change_nothing(tiny):
    loader = tiny["loader"]
    rng = np.random.default_rng(5)
    q, plan, frames = hd_epic_question(rng)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    assert_batching_and_prefix_sharing_change_nothing(loader, prepared, random_coalitions(prepared, rng), TOL)


def test_video_features_match_llava_onevision_except_the_newline(tiny):
    """transformers' LLaVA-OneVision video path with LongVA's weights = ours plus one trailing newline token."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    ours = tiny["model"]
    cfg = LlavaOnevisionConfig(vision_config=ours.config.vision_config.to_dict(),
                               text_config=ours.config.text_config.to_dict(), vision_feature_layer=-2,
                               vision_feature_select_strategy="default", projector_hidden_act="gelu",
                               image_token_index=0, video_token_index=1)
    onevision = LlavaOnevisionForConditionalGeneration(cfg).eval()
    renamed = {}
    for key, value in ours.state_dict().items():
        key = (key.replace("vision_tower.", "model.vision_tower.", 1).replace("mm_projector.0.", "model.multi_modal_projector.linear_1.")
               .replace("mm_projector.2.", "model.multi_modal_projector.linear_2.")
               .replace("language_model.model.", "model.language_model.").replace("language_model.lm_head.", "lm_head."))
        renamed[key] = value
    result = onevision.load_state_dict(renamed, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == {"model.image_newline"}
    pixels = torch.randn(3, 3, ours.config.vision_config.image_size, ours.config.vision_config.image_size)
    with torch.no_grad():
        theirs = onevision.model.get_video_features(pixels[None], vision_feature_layer=-2,
                                                    vision_feature_select_strategy="default",
                                                    output_hidden_states=True).pooler_output[0]
        mine = ours.video_embeds(pixels)
    assert theirs.shape[0] == mine.shape[0] + 1
    assert torch.abs(theirs[:-1] - mine).max() <= TOL


def test_generate_readout_matches_naive_greedy_decoding(tiny):
    from vqa_shap.loaders.longva import LongVALoader

    base = tiny["loader"]
    loader = LongVALoader(base.model, base.processor, readout="generate", do_sample=False, max_new_tokens=4)
    rng = np.random.default_rng(6)
    q, plan, frames = single_question(rng, n_frames=2)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = random_coalitions(prepared, rng, n=2)[:4]
    got = loader.score(prepared, masks)
    lm, letters = base.model.language_model, [base.tokenizer.convert_tokens_to_ids(c) for c in "ABCD"]
    for mask, row in zip(masks, got):
        ids = base.token_ids(prepared, mask)
        embeds = base._embed(prepared, torch.tensor(ids), mask[:prepared.n_video])[None]
        steps, generated = [], []
        with torch.no_grad():
            for _ in range(4):  # greedy, recomputing the whole sequence every step
                logits = lm(inputs_embeds=embeds).logits[0, -1]
                steps.append(logits)
                token = int(logits.argmax())
                generated.append(token)
                embeds = torch.cat([embeds, lm.get_input_embeddings()(torch.tensor([[token]]))], 1)
        expected = steps[letter_step(generated, letters)][letters].numpy()
        assert np.abs(row - expected).max() <= 1e-4
    assert np.abs(loader.score_pixels(prepared, masks) - got).max() <= 1e-4


def test_letter_step_scans_letters_alphabetically():
    a, b, c = 10, 11, 12
    assert letter_step([5, 6, 7], [a, b, c]) == 0          # no letter: step 0
    assert letter_step([b, 5, a], [a, b, c]) == 2          # A is scanned first, wherever it is
    assert letter_step([5, c, b, b], [a, b, c]) == 2       # first occurrence of B


def test_bad_readout_and_unknown_format_are_clear_errors(tiny, tmp_path):
    from vqa_shap.loaders.longva import LongVALoader

    with pytest.raises(LoaderError, match="readout"):
        LongVALoader(tiny["loader"].model, tiny["processor"], readout="sample")
    with pytest.raises(LoaderError, match="generation setting"):
        LongVALoader(tiny["loader"].model, tiny["processor"], top_k=3)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(LoaderError, match="not a longva checkpoint"):
        LongVALoader.load(str(tmp_path))


def test_converted_folder_round_trip_and_resolution(tiny, tmp_path):
    """scripts/convert_longva.py writes a save_pretrained folder that loads with the same scores."""
    out = tmp_path / "converted"
    run_script("convert_longva.py", tiny["folder"], out, "--dtype", "float32")
    assert json.loads((out / "config.json").read_text())["model_type"] == "longva"
    assert resolve_model(str(tiny["folder"]))[0] is get_loader("longva")  # the original (llava_qwen) folder
    cls, path = resolve_model(str(out))
    assert cls is get_loader("longva") and path == str(out)
    converted = cls.load(path, dtype="float32", device="cpu")
    rng = np.random.default_rng(7)
    q, plan, frames = single_question(rng)
    a = tiny["loader"].prepare(q, frames, plan, get_protocol())
    b = converted.prepare(q, frames, plan, get_protocol())
    masks = random_coalitions(a, rng)
    assert np.abs(tiny["loader"].score(a, masks) - converted.score(b, masks)).max() <= TOL


def test_explain_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_SHAP_CACHE", str(tmp_path / "cache"))
    explain_end_to_end("longva", tmp_path)


def test_frame_chunking_does_not_change_tokens(tiny):
    from vqa_shap.loaders.bases.generative import FRAME_CHUNK

    loader = tiny["loader"]
    rng = np.random.default_rng(8)
    q, plan, frames = single_question(rng, n_frames=FRAME_CHUNK + 2)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    pixels = loader.pixel_values(frames[0])
    with torch.no_grad():
        assert torch.abs(prepared.kept_embeds - tiny["loader"].model.video_embeds(pixels)).max() <= TOL
