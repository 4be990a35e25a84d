"""The realistic-proportion demo model (``--model demo-realistic``): its questions (long wording, five
long options), the weight transfer it starts from, the attention read-out its training uses, and the
committed model: proportions, training record, fresh-question accuracy, masking checks, docs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.loaders.demo_models import demo_model_dir

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "fixtures" / "pollard2025"


def test_long_wording_questions(tmp_path):
    from vqa_shap.builders import get_builder
    from vqa_shap.builders.shapes import LONG_VOCABULARY, WORDING_SHAPES, generate_source, sample_items

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
    from vqa_shap.builders.shapes import sample_items

    item = next(iter(sample_items(1, seed=0)))
    assert len(item.question.options) == 4 and len(item.question.question.split()) <= 5
    assert "cross" not in item.question.options


def test_transfer_weights_keeps_what_the_demo_model_computes():
    """A frame tiled 3 x 3 gives the realistic model's vision tower and projector exactly the demo model's
    video tokens, 9 times (tiled position embeddings; attention over identical copies averages as over
    one); the vocabulary only grows; every other tensor is copied."""
    import torch

    from vqa_shap.builders.shapes import sample_items
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
    from vqa_shap.loaders.bases.compat import kv_cache, returned_cache

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


@pytest.mark.skipif(not PAPER.is_dir(), reason=f"the paper's fixtures are not at {PAPER}")
def test_modalities_bench_measures_a_model_and_the_papers_rows(tmp_path):
    """scripts/bench_modalities.py's two halves: a model explained on realistic-layout questions through
    the public commands, and the paper's tables imported, whose rows equal the mean of the paper's own
    published per-question metrics."""
    from vqa_shap.measure.modalities import TABLE_END, TABLE_START, measure_model, measure_paper, update_doc

    model = measure_model("tiny-random/llava_onevision", tmp_path / "model", n_questions=1, budget=300)
    (row,) = model["rows"]
    assert row["n_questions"] == 1 and row["n_errors"] == 0
    assert row["mc_v"] + row["mc_q"] + row["mc_a"] == pytest.approx(1.0, abs=1e-6)
    paper_rows = measure_paper(PAPER, tmp_path / "paper", benchmarks=("egoschema", "mvbench"))
    assert {(r["model"], r["benchmark"]) for r in paper_rows} == {
        (m, b) for m in ("frozenbilm", "internvideo") for b in ("egoschema", "mvbench")}
    for r in paper_rows:
        with open(PAPER / "shapley" / r["model"] / f"{r['benchmark']}_question_metrics.csv") as f:
            truth = [line for line in csv.reader(f) if len(line) > 1 and line[1] == "Ground Truth"]
        assert len(truth) == r["n_questions"] == 12
        for k, column in (("mc_v", 2), ("mc_q", 3), ("mc_a", 4), ("pf_v", 5), ("pf_q", 6), ("pf_a", 7)):
            assert r[k] == pytest.approx(np.mean([float(line[column]) for line in truth]), abs=1e-6), (r["config"], k)
    page = tmp_path / "page.md"
    page.write_text(f"before\n{TABLE_START}\nold\n{TABLE_END}\nafter\n")
    update_doc({"model": model, "paper_rows": paper_rows}, page)
    text = page.read_text()
    assert "old" not in text and text.count("(paper) |") == 4 and "| **tiny-random/llava_onevision** |" in text


def test_training_attempts_in_the_doc_are_the_committed_record():
    """docs/demo.md's table of the realistic model's training runs is the committed record's, whose last
    run is the committed model's, and the doc quotes that model's evaluation."""
    from vqa_shap.measure.doc_tables import replace_between
    from vqa_shap.demo.training import history_table

    record = json.loads((ROOT / "benchmarks" / "demo_realistic_training.json").read_text())
    text = (ROOT / "docs" / "demo.md").read_text()
    start, end = "<!-- realistic-attempts:start -->", "<!-- realistic-attempts:end -->"
    assert replace_between(text, start, end, history_table(record["runs"])) == text
    # the committed model is the last run's, and the doc quotes its evaluation through the full pipeline
    from vqa_shap.demo.architecture import TRAINING_FILE
    from vqa_shap.loaders.demo_models import DEMO_REALISTIC_MODEL

    committed = json.loads((demo_model_dir(DEMO_REALISTIC_MODEL) / TRAINING_FILE).read_text())
    assert committed["runs"][-1]["history"] == record["runs"][-1]["history"]
    assert f"answers **{committed['evaluation']['accuracy']:.2f}** of" in text


def test_evaluation_records_what_masking_changes(tmp_path):
    """On the demo model: masking the evidence frames or the question words changes most correct answers,
    masking as many other frames hardly any (the checks the realistic model's record will carry)."""
    from vqa_shap.demo.evaluation import evaluate

    evaluation = evaluate(None, 9, workdir=tmp_path, threads=1)
    changes = evaluation.masked_changes
    assert evaluation.accuracy >= 0.8 and set(changes) == {"evidence_frames", "other_frames", "question_words"}
    assert changes["evidence_frames"] >= 0.6 and changes["question_words"] >= 0.8 and changes["other_frames"] <= 0.2


def test_training_batches_point_at_the_look_up_word():
    """The first-layer supervised attention reads the question's look-up word: the shape of "what colour
    was the diamond", the colour of "which shape was yellow"; none for "which shape was shown"."""
    from vqa_shap.demo.architecture import REALISTIC_ARCHITECTURE, build_demo_model
    from vqa_shap.demo.batches import BatchEncoder
    from vqa_shap.demo.training import TrainConfig, layout_items

    model, processor = build_demo_model(REALISTIC_ARCHITECTURE)
    items = layout_items(TrainConfig(layout="realistic", n_frames=2), 9, 11)
    batch = BatchEncoder(model, processor, 2)(items)
    for item, at, suffix, options_at in zip(items, batch["asked"].tolist(), batch["suffix"], batch["word_pos"]):
        q = item.question
        if q.task == "shape_shown":
            assert at == -1
            continue
        content = q.extra["frames"][item.evidence_frames[0]]
        word = content["shape"] if q.task == "colour_of_shape" else content["colour"]
        assert processor.tokenizer.convert_ids_to_tokens(int(suffix[at])) == word
        assert f" {word} " in q.question + " " and at < int(options_at.min())  # in the question, before the options
    assert {i.question.task for i in items} == {"colour_of_shape", "shape_of_colour", "shape_shown"}


#: Accuracy the committed realistic model must reach on a few fresh 32-frame questions in the tests (its
#: record needs >= 0.9 on 100); five options, chance 0.2.
MIN_REALISTIC_ACCURACY = 0.75


def test_committed_realistic_model_has_the_proportions_and_its_record():
    """Realistic proportions (32 frames x 36 video tokens, a prompt of >= 1,200 tokens, F >= 120), and a
    record of >= 0.9 held-out accuracy on 100 fresh 32-frame questions whose answers rest on the evidence
    frames and the question words."""
    import torch

    from vqa_shap.demo.architecture import TRAINING_FILE
    from vqa_shap.loaders import resolve_model
    from vqa_shap.loaders.demo_models import DEMO_REALISTIC_MODEL
    from vqa_shap.measure.bench_cases import synthetic_cases

    folder = demo_model_dir(DEMO_REALISTIC_MODEL)
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 10_000_000
    info = json.loads((folder / TRAINING_FILE).read_text())
    evaluation = info["evaluation"]
    assert evaluation["n_questions"] >= 100 and evaluation["accuracy"] >= 0.9
    changes = evaluation["masked_changes"]
    assert changes["evidence_frames"] >= 0.6 and changes["question_words"] >= 0.6 and changes["other_frames"] <= 0.2
    assert info["runs"][-1]["train_config"]["layout"] == "realistic" and info["runs"][-1]["train_config"]["n_frames"] == 32
    torch.set_num_threads(1)
    cls, checkpoint = resolve_model(DEMO_REALISTIC_MODEL)
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (case,) = synthetic_cases(1, seed=50_000_017, workdir=tmp, realistic=True)
        prepared = loader.prepare(case.question, case.frames, case.plan, _protocol())
    ones = np.ones(prepared.n_features, dtype=bool)
    assert prepared.n_video == 32 and prepared.n_features >= 120
    assert len(loader.token_ids(prepared, ones)) >= 1200
    assert int(prepared.kept_embeds.shape[0]) >= 32 * 32


def _protocol():
    from vqa_shap.protocol import get_protocol

    return get_protocol("pollard2025")


def test_committed_realistic_model_answers_fresh_32_frame_questions(tmp_path):
    from helpers import evaluate_committed_model
    from vqa_shap.loaders.demo_models import DEMO_REALISTIC_MODEL

    # fresh questions: a seed used neither in training nor for the recorded evaluation
    evaluation = evaluate_committed_model(DEMO_REALISTIC_MODEL, n_questions=12, seed=50_000_019, workdir=tmp_path,
                                          layout="realistic")
    assert evaluation.n_questions == 12 and evaluation.accuracy >= MIN_REALISTIC_ACCURACY, evaluation


def test_modalities_table_in_the_doc_is_the_committed_json():
    """docs/demo.md's MC/PF table of the committed model next to the paper's rows is rendered from
    benchmarks/modalities_demo_realistic.json (scripts/bench_modalities.py --from-json regenerates it)."""
    from vqa_shap.measure.doc_tables import replace_between
    from vqa_shap.measure.modalities import TABLE_END, TABLE_START, modalities_table

    record = json.loads((ROOT / "benchmarks" / "modalities_demo_realistic.json").read_text())
    text = (ROOT / "docs" / "demo.md").read_text()
    assert replace_between(text, TABLE_START, TABLE_END, modalities_table(record)) == text
    (row,) = record["model"]["rows"]
    assert record["model"]["model"] == "demo-realistic" and row["n_questions"] == 12 and row["n_errors"] == 0
    assert row["mc_v"] + row["mc_q"] + row["mc_a"] == pytest.approx(1.0, abs=1e-6)


def test_question_game_memoises_the_realistic_models_game(tmp_path):
    """The estimator measurements' game (``bench_trained_estimators.py --model demo-realistic``): the
    pipeline benchmark's question, every coalition scored once and kept on disk under the weights' digest."""
    from vqa_shap.loaders import resolve_model
    from vqa_shap.measure.model_games import EvaluationMemo, model_digest, question_game

    memo, n_video, key, description = question_game("demo-realistic", 1, cache_dir=tmp_path, workdir=tmp_path / "v")
    n = memo.n_players
    assert n_video == 32 and n >= 120 and "question 1" in description
    assert key.startswith(f"demo-realistic_{model_digest(resolve_model('demo-realistic')[1])}_")
    masks = np.ones((3, n), dtype=bool)
    masks[1, :n_video] = False               # no frames
    masks[2, n_video:] = False               # no words
    first = memo(masks)
    assert memo.scored == 3 and first.shape == (3, 5) and not np.allclose(first[0], first[1])
    memo.save()

    def no_model(rows):
        raise AssertionError("a memoised coalition was scored again")

    again = EvaluationMemo(no_model, n, memo.path)
    np.testing.assert_array_equal(again(masks[::-1]), first[::-1])
    with pytest.raises(ValueError, match="valid: demo-long, demo-realistic"):
        question_game("demo", 0)
