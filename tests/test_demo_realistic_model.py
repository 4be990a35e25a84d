"""The realistic-proportion demo model (``--model demo-realistic``): its questions (long wording, five
long options), the weight transfer it starts from, the attention read-out its training uses, and the
committed model: proportions, training record, fresh-question accuracy, masking checks, docs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.demo.model import DEMO_REALISTIC_MODEL, TRAINING_FILE, demo_model_dir, evaluate

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "fixtures" / "pollard2025"
MODALITIES_JSON = ROOT / "benchmarks" / "modalities_demo_realistic.json"
#: Accuracy the committed model must reach on fresh questions (five options: chance is 1/5).
MIN_ACCURACY = 0.9


def test_long_wording_questions(tmp_path):
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.synthetic import LONG_VOCABULARY, WORDING_SHAPES, generate_source, sample_items

    items = list(sample_items(6, seed=5, n_frames=32, wording="long", tiles=3))
    for item in items:
        q = item.question
        assert item.frames.shape == (32, 192, 192, 3) and len(q.options) == 5
        assert np.array_equal(item.frames[:, :64, :64], item.frames[:, 128:, 64:128])  # tiled 3 x 3
        assert 25 <= len(q.question.split()) <= 40 and all(12 <= len(o.split()) <= 20 for o in q.options)
        first = [o.split()[0] for o in q.options]
        content = q.extra["frames"][item.evidence_frames[0]]
        # the answer word leads each option; the right option's is what the evidence frames show
        assert len(set(first)) == 5 and first[q.answer] in (content["colour"], content["shape"])
        assert set(first) <= set(WORDING_SHAPES["long"]) | {"red", "green", "blue", "yellow", "white", "purple"}
        if q.task == "colour_of_shape":
            assert f"what colour was the {content['shape']} and" in q.question
        words = {w.strip(",.?").lower() for w in " ".join((q.question, *q.options)).split()}
        assert words - {"colour", "shape", "was", "what", "which", "shown", "red", "green", "blue", "yellow",
                        "white", "purple", *WORDING_SHAPES["long"]} <= set(LONG_VOCABULARY)
    # the written benchmark is the same questions, and the builder reads them
    root = generate_source(tmp_path, 6, seed=5, n_frames=32, wording="long", tiles=3)
    built = list(get_builder("synthetic").build(root).configs["synthetic"])
    assert [(b.question, b.options, b.answer) for b in built] == [
        (i.question.question, i.question.options, i.question.answer) for i in items]
    with pytest.raises(ValueError, match="unknown wording 'verbose'; valid: short, long"):
        list(sample_items(1, wording="verbose"))


def test_the_short_wording_is_unchanged():
    """Adding the long wording left the benchmark's questions (and the demo model's) as they were."""
    from vqa_shap.builders.synthetic import sample_items

    item = next(iter(sample_items(1, seed=0)))
    assert len(item.question.options) == 4 and len(item.question.question.split()) <= 5
    assert "cross" not in item.question.options


def test_transfer_weights_keeps_what_the_demo_model_computes():
    """A frame tiled 3 x 3 gives the realistic model's vision tower and projector exactly the demo model's
    video tokens, 9 times (tiled position embeddings; attention over identical copies averages as over
    one); the vocabulary only grows; every other tensor is copied."""
    import torch

    from vqa_shap.builders.synthetic import sample_items
    from vqa_shap.demo.architecture import REALISTIC_ARCHITECTURE, build_demo_model, transfer_weights

    model, processor = build_demo_model(REALISTIC_ARCHITECTURE)
    how = transfer_weights(model, demo_model_dir())
    assert how["model.vision_tower.embeddings.position_embedding.weight"] == "tiled"
    assert how["model.language_model.embed_tokens.weight"] == how["lm_head.weight"] == "rows"
    assert set(how.values()) == {"copied", "tiled", "rows"}
    demo = type(model).from_pretrained(str(demo_model_dir()), dtype=torch.float32)
    frames = next(iter(sample_items(1, seed=3))).frames  # 8 frames of 64 px
    pixels = torch.from_numpy(((frames.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5).astype(np.float32))[None]
    with torch.no_grad():
        old = demo.model.get_video_features(pixels).pooler_output[0, :-1].reshape(8, 2, 2, -1)
        new = model.model.get_video_features(pixels.repeat(1, 1, 1, 3, 3)).pooler_output[0, :-1]
    assert new.shape == (8 * 36, old.shape[-1])
    assert torch.allclose(new.reshape(8, 6, 6, -1), old.repeat(1, 3, 3, 1), atol=1e-3 * float(old.abs().max()))
    old_vocab = demo.get_input_embeddings().weight.shape[0]
    assert torch.equal(model.get_input_embeddings().weight[:old_vocab], demo.get_input_embeddings().weight)
    # the long wording's tokenizer keeps the demo model's ids
    old_tok = demo_model_tokenizer()
    assert all(processor.tokenizer.convert_tokens_to_ids(w) == i for w, i in old_tok.get_vocab().items())


def demo_model_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(demo_model_dir()))


def test_head_attention_equals_eager_attention():
    """Training reads one head's attention weights from the cache instead of eager attention."""
    import torch
    from transformers import DynamicCache

    from vqa_shap.demo.architecture import REALISTIC_ARCHITECTURE, build_demo_model
    from vqa_shap.demo.batches import BatchEncoder, head_attention
    from vqa_shap.demo.training import TrainConfig, layout_items
    from vqa_shap.loaders.base import kv_cache, returned_cache

    torch.manual_seed(0)
    model, processor = build_demo_model(REALISTIC_ARCHITECTURE)
    model.set_attn_implementation("eager")
    model.eval()
    batch = BatchEncoder(model, processor, 3)(layout_items(TrainConfig(layout="realistic", n_frames=3), 3, 5))
    lm, embed = model.model.language_model, model.get_input_embeddings()
    config = model.config.get_text_config()
    with torch.no_grad():
        cache = returned_cache(lm(inputs_embeds=embed(batch["prefix"]), **kv_cache(lm, DynamicCache(config=config))))
        size, split, n_video = batch["suffix"].shape[0], batch["prefix"].shape[1], batch["n_video"]
        shared = DynamicCache(config=config)
        for i, layer in enumerate(cache.layers):
            shape = (size,) + tuple(layer.keys.shape[1:])
            shared.update(layer.keys.expand(shape), layer.values.expand(shape), i)
        video = model.model.get_video_features(batch["pixel_values_videos"]).pooler_output
        embeds = torch.cat([video, embed(batch["suffix"][:, n_video:])], 1)
        positions = (split + torch.arange(embeds.shape[1]))[None].expand(size, -1)
        out = lm(inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions,
                 **kv_cache(lm, shared), output_hidden_states=True, output_attentions=True)
        rows, read = torch.arange(size), batch["read"]
        for layer in (1, len(lm.layers) - 1):
            eager = out.attentions[layer][rows, 0, read]
            mine = head_attention(lm, layer, out.hidden_states[layer], shared, split + read)
            assert mine.shape == eager.shape and torch.allclose(mine, eager, atol=1e-5)


def test_pipeline_benchmarks_say_whether_each_model_is_trained():
    for path in sorted((ROOT / "benchmarks").glob("*.json")):
        report = json.loads(path.read_text())
        if not isinstance(report, dict) or not isinstance(report.get("models"), dict):
            continue
        for name, bench in report["models"].items():
            if isinstance(bench, dict) and "runs" in bench:
                assert bench["trained"] is (name != "realistic"), (path, name)


def test_committed_model_has_realistic_proportions_and_its_record(tmp_path):
    """The committed model: a few MB, trained on the realistic layout, its recorded held-out accuracy and
    masking checks; then fresh questions through the real inference path (videos -> builder -> loader)."""
    import torch

    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    folder = demo_model_dir(DEMO_REALISTIC_MODEL)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 5_000_000
    info = json.loads((folder / TRAINING_FILE).read_text())
    assert info["init_from"] == "demo_model" and info["runs"][-1]["train_config"]["layout"] == "realistic"
    evaluation = info["evaluation"]
    assert evaluation["n_questions"] >= 100 and evaluation["accuracy"] >= MIN_ACCURACY
    changes = evaluation["masked_changes"]
    assert changes["evidence_frames"] >= 0.8 and changes["question_words"] >= 0.5
    assert changes["other_frames"] <= 0.2  # masking as many other frames rarely matters
    torch.set_num_threads(1)
    cls, checkpoint = resolve_model(DEMO_REALISTIC_MODEL)
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    fresh = evaluate(n_questions=15, seed=50_000_021, workdir=tmp_path / "fresh", loader=loader, layout="realistic")
    assert fresh.n_questions == 15 and fresh.accuracy >= 0.8, fresh
    # realistic proportions: 32 frames x 36 video tokens, a prompt of > 1200 tokens, F >= 120 players
    from vqa_shap.bench.pipeline import realistic_synthetic_cases

    case = realistic_synthetic_cases(1, seed=50_000_023, workdir=tmp_path / "bench")[0]
    prepared = loader.prepare(case.question, case.frames, case.plan, get_protocol("pollard2025"))
    ones = np.ones(prepared.n_features, dtype=bool)
    assert prepared.n_video == 32 and prepared.kept_embeds.shape[0] == 32 * 36 + 1
    assert len(loader.token_ids(prepared, ones)) >= 1200 and prepared.n_features >= 120
    assert len(case.question.options) == 5


def test_doc_figures_match_the_training_record():
    info = json.loads((demo_model_dir(DEMO_REALISTIC_MODEL) / TRAINING_FILE).read_text())
    text = (ROOT / "docs" / "demo.md").read_text()
    from vqa_shap.demo.training import record_table

    assert record_table(info) in text


def test_modalities_table_is_the_committed_json():
    from vqa_shap.bench.modalities import TABLE_END, TABLE_START, modalities_table

    record = json.loads(MODALITIES_JSON.read_text())
    text = (ROOT / "docs" / "demo.md").read_text()
    assert text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0] == "\n" + modalities_table(record)
    assert record["model"]["model"] == DEMO_REALISTIC_MODEL and record["model"]["rows"][0]["n_errors"] == 0


@pytest.mark.skipif(not PAPER.is_dir(), reason=f"the paper's fixtures are not at {PAPER}")
def test_paper_rows_are_the_papers_published_per_question_means():
    """The paper rows (imported tables through vqa-shap metrics) equal the mean of the paper's own
    published per-question metrics."""
    record = json.loads(MODALITIES_JSON.read_text())
    assert {(r["model"], r["benchmark"]) for r in record["paper_rows"]} == {
        (m, b) for m in ("frozenbilm", "internvideo") for b in ("egoschema", "hd-epic", "mvbench", "lvbench")}
    for row in record["paper_rows"]:
        with open(PAPER / "shapley" / row["model"] / f"{row['benchmark']}_question_metrics.csv") as f:
            truth = [r for r in csv.reader(f) if len(r) > 1 and r[1] == "Ground Truth"]
        assert len(truth) == row["n_questions"] == 12
        for k, column in (("mc_v", 2), ("mc_q", 3), ("mc_a", 4), ("pf_v", 5), ("pf_q", 6), ("pf_a", 7)):
            assert row[k] == pytest.approx(np.mean([float(r[column]) for r in truth]), abs=1e-6), (row["config"], k)
