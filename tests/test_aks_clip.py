"""The CLIP relevance scorer for AKS: a tiny random CLIPModel saved offline; its scores equal the
cosine the model's own forward computes (logits_per_image / logit_scale), and ``--aks-scorer clip:PATH``
selects frames with them in explain."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap.long_video.aks import AksError, ClipScorer, aks_select, parse_scorer
from vqa_shap.schema.records import Question, VisualInput


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from vqa_shap.loaders.testing.tiny import build_clip_tokenizer, randomise

    tok = build_clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    torch.manual_seed(0)
    model = randomise(CLIPModel(config)).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tok)
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _question(options=("red", "blue")):
    return Question("c-1", "synthetic", "t", "What colour was the square?", options, 0,
                    inputs=(VisualInput("video", "v.mp4"),))


def _frames(n, seed=0):
    from vqa_shap.synthetic_inputs import random_frames

    return random_frames(n, (48, 48), seed=seed)


def test_clip_scores_are_the_models_own_cosines(clip_dir):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from vqa_shap.protocol.base import FramePlan, FrameRef

    frames = _frames(7)
    plan = FramePlan(tuple(FrameRef(0, i, float(i)) for i in range(7)))
    scorer = ClipScorer.load(clip_dir, batch_size=3)  # 3 batches of the vision tower
    scores = scorer.score(_question(), [frames[:4], frames[4:]], plan)
    # a second computation: the model's forward over text and images (its logits are scaled cosines)
    model, processor = CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)
    with torch.no_grad():
        out = model(**processor(text=["What colour was the square?"], images=list(frames), return_tensors="pt",
                                padding=True))
        reference = (out.logits_per_image[:, 0] / model.logit_scale.exp()).numpy()
    assert scores.shape == (7,) and np.allclose(scores, reference, atol=1e-5)
    assert np.ptp(scores) > 1e-3  # the frames really score differently
    # with the options the text, hence the scores, change
    with_options = ClipScorer.load(clip_dir, with_options=True)
    assert with_options.text(_question()) == "What colour was the square? red blue"
    assert not np.allclose(with_options.score(_question(), [frames], plan), scores)
    with pytest.raises(AksError, match="3 frames for 7 candidates"):
        scorer.score(_question(), [frames[:3]], plan)


def test_parse_scorer_names_the_problem(clip_dir, tmp_path):
    assert parse_scorer(None) == ("model", None) and parse_scorer("model") == ("model", None)
    assert parse_scorer(f"clip:{clip_dir}") == ("clip", str(clip_dir))
    with pytest.raises(AksError, match="valid: model, clip:PATH"):
        parse_scorer("blip:x")
    with pytest.raises(AksError, match="needs a folder"):
        parse_scorer("clip:")
    with pytest.raises(AksError, match="not a folder"):
        parse_scorer(f"clip:{tmp_path / 'missing'}")
    with pytest.raises(AksError, match="CLIP scorer folder not found"):
        ClipScorer.load(tmp_path / "missing")


def _exit_code(main, argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's parse-time errors
        return exc.code


@pytest.mark.slow
def test_explain_aks_scorer_clip_end_to_end(clip_dir, tmp_path, capsys):
    import datasets
    import torch

    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.hub.card import config_vars
    from vqa_shap.protocol import get_protocol
    from vqa_shap.synthetic_inputs import write_video

    torch.set_num_threads(1)
    write_video(tmp_path / "videos" / "v.mp4", _frames(48, seed=1), 4.0)
    q = _question()
    write_questions(tmp_path / "questions", "aks", [q])
    base = ["explain", str(tmp_path / "questions"), "--config", "aks", "--model", DEMO_MODEL,
            "--video-root", str(tmp_path / "videos"), "--frames", "4", "--budget", "8", "--no-progress",
            "--device", "cpu", "--dtype", "float32"]
    # bad input: exit 2 with one line naming the problem, before any work
    for extra, message in [(["--sampler", "aks", "--aks-scorer", f"clip:{tmp_path / 'none'}"], "is not a folder"),
                           (["--aks-scorer", f"clip:{clip_dir}"], "needs sampler 'aks'")]:
        assert _exit_code(main, base + ["--out", str(tmp_path / "bad")] + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(base + ["--out", str(tmp_path / "out"), "--sampler", "aks", "--aks-scorer", f"clip:{clip_dir}"]) == 0
    (row,) = datasets.load_dataset(str(tmp_path / "out"), name="demo__aks", split="test",
                                   download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    assert config_vars(tmp_path / "out", "demo__aks")["aks_scorer"] == f"clip:{clip_dir.name}"
    times = [f["time"] for f in row["features"] if f["modality"] == "video"]
    # by hand: the CLIP cosines of the 16 uniform candidates, then AKS keeps 4
    proto = get_protocol()
    pool = proto.plan_frames(q, tmp_path / "videos", 16, sampler="aks", loader_family="llava_onevision")
    scores = ClipScorer.load(clip_dir).score(q, proto.load_frames(q, tmp_path / "videos", pool), pool)
    assert times == [pool.frames[i].time for i in aks_select(scores, 4)]
    assert times != [pool.frames[i].time for i in (0, 5, 10, 15)]  # not what uniform sampling keeps
