"""FrozenBiLM loader: original-checkpoint key map, conversion, and scores against a naive reference.

The reference below is written from the original FrozenBiLM code's description, independently of the
loader: it reads the *original-named* random state dict itself, applies the adapters by replacing the
two sublayer outputs' forward (not hooks), writes the EMD and the answer head out by hand, and scores
one coalition and one option at a time, unpadded, with the masked frame features zeroed.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers import (assert_bad_inputs_raise_clear_errors, assert_same_scores, random_masks,  # noqa: E402
                     run_script, torch_threads)
from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, DebertaV2Config,  # noqa: E402
                          DebertaV2ForMaskedLM, DebertaV2Model)

from vqa_shap.loaders.bases.loader import LoaderError
from vqa_shap.loaders.bases.option_head import clip_pixels  # noqa: E402
from vqa_shap.loaders.frozenbilm import FrozenBiLMLoader
from vqa_shap.loaders.rebuilt.frozenbilm_convert import load_original, map_original_keys
from vqa_shap.loaders.testing.tiny import build_deberta_tokenizer  # noqa: E402
from vqa_shap.protocol.base import FramePlan, FrameRef
from vqa_shap.protocol import get_protocol
from vqa_shap.protocol.words import join_words  # noqa: E402
from vqa_shap.schema.records import Question, VisualInput  # noqa: E402

TOL = 1e-5
T = 4  # frames
FEATURES = 8


_threads = torch_threads(2)
_coalitions = partial(random_masks, seed=3)


def _text_config(vocab: int) -> DebertaV2Config:
    # a tiny config: hidden 32, 3 layers, 4 heads, buckets 16, conv 3, p2c|c2p, shared keys
    return DebertaV2Config(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, relative_attention=True, position_buckets=16, max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm", conv_kernel_size=3,
        conv_act="gelu", position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7, hidden_act="gelu",
        legacy=False, pad_token_id=0)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """Random FrozenBiLM parts in their original formats: DeBERTa base folder, fine-tune file, CLIP folder."""
    root = tmp_path_factory.mktemp("fblm_original")
    gen = torch.Generator().manual_seed(0)
    tok = build_deberta_tokenizer()
    cfg = _text_config(len(tok))
    h, ds = cfg.hidden_size, 4
    base = {k: v for k, v in DebertaV2ForMaskedLM(cfg).state_dict().items() if "position_ids" not in k}
    base["deberta.embeddings.position_embeddings.weight"] = torch.empty(cfg.max_position_embeddings, h)
    base["lm_predictions.lm_head.decoder.weight"] = torch.empty(cfg.vocab_size, h)  # unused copy, dropped
    finetune = {"deberta.embeddings.linear_video.weight": torch.empty(h, FEATURES),
                "deberta.embeddings.linear_video.bias": torch.empty(h),
                "answer_embeddings.weight": torch.empty(2, h), "answer_bias": torch.empty(2)}
    for i in range(cfg.num_hidden_layers):
        for part, in_dim in (("attention.output", h), ("output", h)):
            pre = f"deberta.encoder.layer.{i}.{part}.adapter"
            finetune.update({f"{pre}.down.weight": torch.empty(h // ds, in_dim),
                             f"{pre}.down.bias": torch.empty(h // ds),
                             f"{pre}.up.weight": torch.empty(h, h // ds), f"{pre}.up.bias": torch.empty(h)})
    for state in (base, finetune):
        for k, v in state.items():
            state[k] = torch.randn(v.shape, generator=gen) * (0.5 if v.dim() == 1 else 0.3)
            if v.dim() == 1 and "LayerNorm.weight" in k:
                state[k] += 1.0
    deberta = root / "deberta"
    deberta.mkdir()
    cfg.save_pretrained(deberta)
    torch.save(base, deberta / "pytorch_model.bin")
    tok.save_pretrained(deberta)
    torch.save({"model": finetune, "epoch": 3}, root / "how2qa.pth")
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=28,
        patch_size=14, projection_dim=FEATURES, hidden_act="quick_gelu"))
    clip.save_pretrained(root / "clip")
    # FrozenBiLM's adapter factor is 8; this tiny model uses 4 (a config value of load_original)
    return {"root": root, "deberta": deberta, "finetune": root / "how2qa.pth", "clip": root / "clip",
            "base": base, "ft": finetune, "tok": tok}


@pytest.fixture(scope="module")
def loader(original):
    model, tok = load_original(original["deberta"], original["finetune"], original["clip"],
                               ds_factor_attn=4, ds_factor_ff=4, image_size=28)
    return FrozenBiLMLoader(model, tok, checkpoint="original", batch_size=3)


def _question(n_options: int = 3) -> tuple[Question, FramePlan, list[np.ndarray]]:
    rng = np.random.default_rng(7)
    options = ("Cut the cup", "Wash the plate with water", "Open the fridge door", "Pick up knife")[:n_options]
    q = Question("q1", "egoschema", "t", "What is the man doing with the cup", options, 1,
                 (VisualInput("video", "v.mp4"),))
    plan = FramePlan(tuple(FrameRef(0, i, float(i)) for i in range(T)))
    return q, plan, [rng.integers(0, 256, (T, 40, 52, 3), dtype=np.uint8)]


# ---------------------------------------------------------------------------------- naive reference
class NaiveFrozenBiLM:
    """FrozenBiLM written out from the original code's description, on the original-named state dicts."""

    def __init__(self, original):
        state = dict(original["base"])
        state.update(original["ft"])
        self.s = state
        self.tok = original["tok"]
        cfg = DebertaV2Config.from_pretrained(original["deberta"])
        self.deberta = DebertaV2Model(cfg).eval()
        own = {k[len("deberta."):]: v for k, v in state.items()
               if k.startswith("deberta.") and "adapter" not in k and "linear_video" not in k
               and "position_embeddings" not in k}
        missing, unexpected = self.deberta.load_state_dict(own, strict=False)
        assert not unexpected and set(missing) <= {"embeddings.position_ids"}
        for i, layer in enumerate(self.deberta.encoder.layer):
            for part, module in (("attention.output", layer.attention.output), ("output", layer.output)):
                module.forward = self._sublayer(module, f"deberta.encoder.layer.{i}.{part}.adapter")
        self.clip = CLIPVisionModelWithProjection.from_pretrained(original["clip"]).eval()

    def _sublayer(self, module, prefix):
        s = self.s

        def forward(hidden, residual):
            x = module.dense(hidden)
            down = torch.relu(x @ s[f"{prefix}.down.weight"].T + s[f"{prefix}.down.bias"])
            x = x + down @ s[f"{prefix}.up.weight"].T + s[f"{prefix}.up.bias"]
            return module.LayerNorm(x + residual)
        return forward

    def features(self, frames):
        pixels = clip_pixels(frames, 28, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
        return self.clip(pixel_values=pixels).image_embeds.half().float()

    def p_yes(self, feats, text):
        s = self.s
        ids = torch.tensor([self.tok(text)["input_ids"]])
        where = ids[0].tolist().index(self.tok.mask_token_id)
        video = feats @ s["deberta.embeddings.linear_video.weight"].T + s["deberta.embeddings.linear_video.bias"]
        embeds = torch.cat([video[None], self.deberta.embeddings.word_embeddings(ids)], 1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)
        hidden = self.deberta(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True).hidden_states
        keys = hidden[-2]
        query = s["deberta.embeddings.position_embeddings.weight"][: keys.shape[1]][None] + keys
        enc = self.deberta.encoder
        for _ in range(2):  # the EMD: the last layer twice, keys/values = second-to-last hidden states
            query = enc.layer[-1](keys, enc.get_attention_mask(mask), query_states=query,
                                  rel_embeddings=enc.get_rel_embedding())[0]
        x = query[0, video.shape[0] + where]
        head = "lm_predictions.lm_head."
        x = torch.nn.functional.gelu(x @ s[head + "dense.weight"].T + s[head + "dense.bias"])
        x = torch.nn.functional.layer_norm(x, (x.shape[-1],), s["lm_predictions.lm_head.LayerNorm.weight"],
                                           s["lm_predictions.lm_head.LayerNorm.bias"], eps=1e-7)
        first_piece = [self.tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No")]
        answers = s["deberta.embeddings.word_embeddings.weight"][first_piece]
        logits = answers @ x + s["answer_bias"]
        return float(logits.softmax(-1)[0])

    def score(self, question, frames, mask, n_video):
        proto = get_protocol()
        segments = proto.word_segments(question)
        keep = mask[n_video:]
        texts, offset = [], 0
        for words in segments:
            texts.append(join_words(words, keep[offset:offset + len(words)]))
            offset += len(words)
        feats = self.features(frames[0]) * torch.as_tensor(mask[:n_video], dtype=torch.float32)[:, None]
        return [self.p_yes(feats, f"Question: {texts[0]} Is it '{o}'? [MASK].") for o in texts[1:]]


# ---------------------------------------------------------------------------------- tests
def test_original_keys_load_with_nothing_missing_or_unexpected(original, loader):
    merged = dict(original["base"])
    merged.update(original["ft"])
    mapped = map_original_keys(merged)
    ours = set(loader.model.state_dict()) - {k for k in loader.model.state_dict() if k.startswith("vision.")}
    assert set(mapped) == ours  # every parameter comes from the original files, none is left over
    assert torch.equal(loader.model.position_embeddings.weight,
                       original["base"]["deberta.embeddings.position_embeddings.weight"])
    assert torch.equal(loader.model.linear_video.weight, original["ft"]["deberta.embeddings.linear_video.weight"])
    assert torch.equal(loader.model.deberta.encoder.layer[2].output.adapter.up.bias,
                       original["ft"]["deberta.encoder.layer.2.output.adapter.up.bias"])
    with pytest.raises(LoaderError, match="unexpected key.*deberta.pooler.dense.weight"):
        map_original_keys({**merged, "deberta.pooler.dense.weight": torch.zeros(1)})


def test_scores_equal_naive_reference(original, loader):
    q, plan, frames = _question()
    prepared = loader.prepare(q, frames, plan, get_protocol())
    assert prepared.n_video == T
    masks = _coalitions(prepared.n_features)
    scores = loader.score(prepared, masks)
    assert scores.shape == (len(masks), 3) and scores.dtype == np.float32
    naive = NaiveFrozenBiLM(original)
    with torch.inference_mode():
        reference = np.array([naive.score(q, frames, m, T) for m in masks])
    assert np.abs(scores - reference).max() <= TOL
    assert np.abs(scores[0] - scores[1]).max() > 1e-3  # not vacuous: masking moves the scores


def test_cached_equals_uncached_and_batching(loader):
    q, plan, frames = _question(4)
    prepared = loader.prepare(q, frames, plan, get_protocol())
    masks = _coalitions(prepared.n_features, n=5, seed=11)
    cached = loader.score(prepared, masks)
    assert np.abs(cached - loader.score_pixels(prepared, masks)).max() <= TOL
    loader.batch_size = 1
    try:
        one = loader.score(prepared, masks)
    finally:
        loader.batch_size = 3
    assert np.abs(cached - one).max() <= TOL


def test_frame_bit_is_a_zeroed_feature_and_option_words_touch_only_their_column(loader):
    q, plan, frames = _question()
    prepared = loader.prepare(q, frames, plan, get_protocol())
    full = np.ones(prepared.n_features, bool)
    off = full.copy()
    off[2] = False
    a, b = loader.score(prepared, np.array([full, off]))
    assert np.abs(a - b).min() > 0  # frame 2 matters to every option
    zeroed = prepared.frame_features.clone()
    zeroed[2] = 0
    assert np.abs(loader.score(replace(prepared, frame_features=zeroed), full[None])[0] - b).max() <= 1e-6
    # option 1's words (the answer words with option == 1) only move column 1
    words = [i for i, f in enumerate(prepared.features) if f.modality == "answer" and f.option == 1]
    masked = full.copy()
    masked[words] = False
    c = loader.score(prepared, masked[None])[0]
    assert abs(c[1] - a[1]) > 1e-4 and abs(c[0] - a[0]) <= 1e-6 and abs(c[2] - a[2]) <= 1e-6  # (padding: float noise)


def test_answer_bias_comes_from_the_checkpoint(original, loader):
    q, plan, frames = _question()
    prepared = loader.prepare(q, frames, plan, get_protocol())
    full = np.ones((1, prepared.n_features), bool)
    before = loader.score(prepared, full)[0].astype(np.float64)
    bias = loader.model.answer_bias.detach().clone()
    try:
        with torch.no_grad():
            loader.model.answer_bias += torch.tensor([0.7, -0.3])
        after = loader.score(prepared, full)[0].astype(np.float64)
    finally:
        with torch.no_grad():
            loader.model.answer_bias.copy_(bias)
    logit = np.log(before / (1 - before)) + 1.0  # P(yes) = sigmoid(l_yes - l_no + b_yes - b_no)
    assert np.abs(after - 1 / (1 + np.exp(-logit))).max() <= 1e-5
    assert torch.equal(bias, original["ft"]["answer_bias"])


def test_hd_epic_prompts_have_tags_rewritten_after_masking_and_inputs_concatenated(loader):
    tag = "<TIME 00:00:02.000 video 1>"
    q = Question("hd1", "hd-epic", "t", f"What did he take at {tag}", ("The cup", "The knife"), 0,
                 (VisualInput("video", "P01.mp4", label="video 1"), VisualInput("image", "P01.mp4", time=3.0,
                                                                                 label="image 1")))
    plan = FramePlan((FrameRef(0, 0, 0.0), FrameRef(0, 1, 1.0), FrameRef(0, 2, 2.0), FrameRef(1, 3, 3.0)), stride=1.0)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (n, 30, 30, 3), dtype=np.uint8) for n in (3, 1)]
    prepared = loader.prepare(q, frames, plan, get_protocol())
    assert prepared.n_video == 4 and prepared.frame_features.shape[0] == 4
    words = prepared.features[4:]
    kept = np.ones(len(words), bool)
    assert loader.prompts(prepared, kept)[0] == "Question: What did he take at 00:02 ? Is it 'The cup'? [MASK]."
    kept[[f.name for f in words].index(tag)] = False  # a masked tag simply disappears
    assert loader.prompts(prepared, kept)[1] == "Question: What did he take at   ? Is it 'The knife'? [MASK]."
    masks = _coalitions(prepared.n_features, n=3)
    assert np.abs(loader.score(prepared, masks) - loader.score_pixels(prepared, masks)).max() <= TOL


def test_converted_folder_loads_and_scores_the_same(original, loader, tmp_path):
    out = tmp_path / "converted"
    run_script("convert_frozenbilm.py", "--deberta", original["deberta"], "--checkpoint", original["finetune"],
               "--clip", original["clip"], "--out", out, "--ds-factor", "4", "--image-size", "28")
    q, plan, frames = _question()
    assert_same_scores(loader, FrozenBiLMLoader.load(str(out)), (q, plan, frames),
                       _coalitions(len(get_protocol().features(q, plan)), n=3))


def test_bad_inputs_raise_clear_errors(loader, tmp_path):
    assert_bad_inputs_raise_clear_errors(loader, _question(), tmp_path)
    from vqa_shap.loaders.testing.tiny import tiny_model_dir

    other = tiny_model_dir("internvideo", cache_dir=tmp_path)  # another model type is refused, not half-loaded
    with pytest.raises(LoaderError, match="model_type 'internvideo', not 'frozenbilm'"):
        FrozenBiLMLoader.load(str(other))


# ---------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("family", ["frozenbilm", "internvideo"])
def test_cli_explain_end_to_end(family, tmp_path, monkeypatch):
    """``vqa-shap explain --model tiny-random/<family>`` on synthesised videos; rows load with
    ``load_dataset``. (InternVideo's end-to-end run lives here too, to share the set-up.)"""
    import datasets

    from vqa_shap.cli import main
    from vqa_shap.explain.workdir import attributions_config
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    monkeypatch.setenv("VQA_SHAP_CACHE", str(tmp_path / "cache"))
    questions = [
        Question("q-three", "egoschema", "t", "What is the man doing with the cup",
                 ("Cut the cup", "Wash the plate", "Open door"), 2, (VisualInput("video", "a.mp4"),)),
        Question("q-six", "egoschema", "t", "Which object did he take",
                 tuple(f"Take the {w}" for w in ("cup", "bowl", "knife", "plate", "pan", "spoon")), 0,
                 (VisualInput("video", "b.mp4"),)),
    ]
    write_questions(tmp_path / "questions", "small", questions)
    synthesize_inputs(questions, tmp_path / "videos", n_frames=8, size=(32, 40), seed=0)
    out = tmp_path / "out"
    code = main(["explain", str(tmp_path / "questions"), "--config", "small", "--model", f"tiny-random/{family}",
                 "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", "4", "--budget", "64",
                 "--batch-size", "16", "--no-progress"])
    assert code == 0
    ds = datasets.load_dataset(str(out), attributions_config(f"tiny-random/{family}", "small"), split="test", download_mode="force_redownload")
    rows = {r["qid"]: r for r in ds}
    assert set(rows) == {"q-three", "q-six"} and all(r["loader"] == family for r in rows.values())
    explained = ["q-three", "q-six"] if family == "frozenbilm" else ["q-three"]
    for qid in explained:
        row = rows[qid]
        assert row["error"] is None, row["error"]
        phi = np.asarray(row["shapley"], dtype=np.float64)
        full, empty = np.asarray(row["value_full"]), np.asarray(row["value_empty"])
        assert phi.shape == (len(row["features"]), len(row["value_full"]))
        np.testing.assert_allclose(phi.sum(0), full - empty, atol=1e-4)  # efficiency
        assert [f["modality"] for f in row["features"][:4]] == ["video"] * 4
        if family == "frozenbilm":  # option j's words only enter prompt j: exactly zero elsewhere (one prompt per option)
            for f, values in zip(row["features"], phi):
                if f["modality"] == "answer":
                    others = np.delete(values, f["option"])
                    assert np.abs(others).max() <= 1e-6
    if family == "internvideo":
        assert "6 options" in rows["q-six"]["error"] and "at most 5" in rows["q-six"]["error"]
