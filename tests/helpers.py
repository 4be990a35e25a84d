"""Test scaffolding shared by the loader test files (imported as ``helpers``; tests/ is on sys.path)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # every loader test needs it

from vqa_shap.protocol.base import FramePlan, FrameRef
from vqa_shap.protocol import get_protocol  # noqa: E402
from vqa_shap.schema.records import Question, VisualInput  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def torch_threads(n: int):
    """A module-scoped autouse fixture running the module's tests on ``n`` torch threads (then restoring).

    Use as ``_threads = torch_threads(1)`` at module level (2 CPU cores are shared by many jobs).
    """
    @pytest.fixture(scope="module", autouse=True)
    def _threads():
        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        yield
        torch.set_num_threads(previous)

    return _threads


def run_script(name: str, *args) -> None:
    """Run ``scripts/<name>`` as ``__main__`` in this process with ``args`` as its argv; it must exit 0."""
    argv = sys.argv
    sys.argv = [name, *map(str, args)]
    try:
        runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    except SystemExit as done:
        assert done.code in (0, None), f"{name} exited with {done.code}"
    finally:
        sys.argv = argv


def script_main(name: str):
    """The ``main(argv) -> int`` of ``scripts/<name>`` (loaded without running it)."""
    return runpy.run_path(str(SCRIPTS / name), run_name=Path(name).stem)["main"]


# ------------------------------------------------------------------------------------------ questions
def single_question(rng, n_frames: int = 4, text: str = "What did c do with the cup?"):
    """A one-video EgoSchema-style question with 4 options and ``n_frames`` random 40x48 frames."""
    q = Question("q-single", "egoschema", "task", text,
                 ("Picked up the cup", "Washed the bowl", "Put it down", "Opened the door"), 1,
                 inputs=(VisualInput("video", "v.mp4"),))
    plan = FramePlan(tuple(FrameRef(0, 3 * i, 0.5 * i) for i in range(n_frames)))
    return q, plan, [rng.integers(0, 256, (n_frames, 40, 48, 3), dtype=np.uint8)]


def hd_epic_question(rng, image_size: tuple[int, int] = (30, 30)):
    """An HD-EPIC-style question with two inputs: a 5-frame video and a one-frame image of ``image_size``."""
    q = Question("object_motion_1", "hd-epic", "object_motion", "What did the person take at <TIME 00:00:02.000 video 1>?",
                 ("cup", "the bowl", "a knife"), 0,
                 inputs=(VisualInput("video", "P01/P01-a.mp4", start=0.0, end=10.0, label="video 1"),
                         VisualInput("image", "P01/P01-b.mp4", time=3.0, label="image 1")))
    plan = FramePlan(tuple([FrameRef(0, i, float(2 * i)) for i in range(5)] + [FrameRef(1, 3, 3.0)]), stride=2.0)
    return q, plan, [rng.integers(0, 256, (5, 40, 48, 3), dtype=np.uint8),
                     rng.integers(0, 256, (1, *image_size, 3), dtype=np.uint8)]


def random_masks(n_features: int, n: int = 6, seed: int = 0) -> np.ndarray:
    """``n`` random coalitions (keep probability 0.6): the first all kept, the second all masked."""
    rng = np.random.default_rng(seed)
    masks = rng.random((n, n_features)) < 0.6
    masks[0] = True
    masks[1] = False
    return masks


# ------------------------------------------------------------------------------------------ checks
def assert_video_and_text_move_scores(loader, prepared, mask: np.ndarray) -> None:
    """The exactness comparisons are not vacuous: masking the video and masking the text both move the scores."""
    video_off, text_off = mask.copy(), mask.copy()
    video_off[:prepared.n_video] = False
    text_off[prepared.n_video:] = False
    moved = loader.score(prepared, np.array([mask, video_off, text_off]))
    assert np.abs(moved[0] - moved[1]).max() > 1e-4
    assert np.abs(moved[0] - moved[2]).max() > 1e-4


def assert_scores_match_reference(loader, prepared, masks: np.ndarray, reference: np.ndarray, tol: float) -> None:
    """Cached scores equal a naive reference and the uncached ``score_pixels``, and are not vacuous."""
    cached = loader.score(prepared, masks)
    assert cached.shape == (len(masks), prepared.n_options)
    assert np.abs(cached - reference).max() <= tol
    assert np.abs(loader.score_pixels(prepared, masks) - cached).max() <= tol  # cached == uncached
    assert_video_and_text_move_scores(loader, prepared, masks[0])


def assert_batching_and_prefix_sharing_change_nothing(loader, prepared, masks: np.ndarray, tol: float) -> None:
    """One coalition per forward without prefix sharing equals batches of 3 with it."""
    before = loader.batch_size, loader.prefix_sharing
    try:
        loader.batch_size, loader.prefix_sharing = 1, False
        one = loader.score(prepared, masks)
        loader.batch_size, loader.prefix_sharing = 3, True
        shared = loader.score(prepared, masks)
    finally:
        loader.batch_size, loader.prefix_sharing = before
    assert np.abs(one - shared).max() <= tol


def assert_same_scores(loader, other, question, masks: np.ndarray) -> None:
    """Two loaders of the same weights (e.g. original and converted) give identical scores."""
    q, plan, frames = question
    a = loader.score(loader.prepare(q, frames, plan, get_protocol()), masks)
    b = other.score(other.prepare(q, frames, plan, get_protocol()), masks)
    assert np.array_equal(a, b)


def assert_bad_inputs_raise_clear_errors(loader, question, empty_folder: Path) -> None:
    """No frames, a coalition of the wrong width and a folder without a checkpoint each fail clearly."""
    from vqa_shap.loaders.bases.loader import LoaderError, UnsupportedQuestionError

    q, plan, frames = question
    with pytest.raises(UnsupportedQuestionError, match="no frames"):
        loader.prepare(q, [], FramePlan(()), get_protocol())
    prepared = loader.prepare(q, frames, plan, get_protocol())
    with pytest.raises(ValueError, match="coalitions must be bool"):
        loader.score(prepared, np.ones((2, prepared.n_features + 1), bool))
    with pytest.raises(LoaderError, match=f"cannot load {loader.family}"):
        type(loader).load(str(empty_folder))


# ------------------------------------------------------------------------------------------ generative families
#: The CLIP tower prefix of the original LLaVA-style checkpoints (LongVA, VideoLLaMA2).
VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."


def original_name(key: str) -> str:
    """Our key -> the original LLaVA-style name (the inverse of the key map, spelled out by hand)."""
    if key.startswith("vision_tower."):
        return VISION_PREFIX + key[len("vision_tower."):]
    if key.startswith("mm_projector."):
        return "model." + key
    if key.startswith("language_model.model."):
        return "model." + key[len("language_model.model."):]
    if key.startswith("language_model.lm_head."):
        return key[len("language_model."):]
    raise AssertionError(f"unexpected key {key}")


def randomise(model, seed: int = 0):
    """Non-trivial values for parameters that initialise to constants (norm weights, biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() <= 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + (1.0 if (p > 0.5).all() else 0.0))
    return model


def write_original(folder: Path, model, processor, config: dict, *, with_vision: bool = True) -> tuple[Path, dict]:
    """An original-format checkpoint of ``model`` (LLaVA key names, flat config.json) + its CLIP tower folder.

    Returns ``(checkpoint folder, original state dict)``.
    """
    from safetensors.torch import save_file
    from transformers import CLIPConfig

    folder.mkdir(parents=True)
    vision_dir = folder.parent / f"{folder.name}-clip"
    vision_dir.mkdir()
    original = {original_name(k): v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    stored = original if with_vision else {k: v for k, v in original.items() if not k.startswith(VISION_PREFIX)}
    keys = sorted(stored)
    half = len(keys) // 2  # two shards, as a real sharded checkpoint
    save_file({k: stored[k] for k in keys[:half]}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({k: stored[k] for k in keys[half:]}, str(folder / "model-00002-of-00002.safetensors"))
    vision_cfg = model.config.vision_config
    clip = CLIPConfig(vision_config=vision_cfg.to_dict(),
                      text_config={"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "vocab_size": 10})
    clip.save_pretrained(vision_dir)
    processor.image_processor.save_pretrained(vision_dir)
    # the CLIP repo's weights, as CLIPModel names them (text tower included)
    tower = {"vision_model." + k[len(VISION_PREFIX):]: v for k, v in original.items() if k.startswith(VISION_PREFIX)}
    tower["text_model.embeddings.token_embedding.weight"] = torch.zeros(10, 8)
    tower["logit_scale"] = torch.zeros(())
    save_file(tower, str(vision_dir / "model.safetensors"))
    text = model.config.text_config.to_dict()
    rope = text.pop("rope_parameters", None) or {}
    flat = {**{k: v for k, v in text.items() if k not in ("model_type", "architectures", "dtype")},
            "rope_theta": rope.get("rope_theta", 1e6), "mm_vision_tower": str(vision_dir),
            "mm_hidden_size": vision_cfg.hidden_size, "mm_vision_select_layer": -2,
            "mm_vision_select_feature": "patch", **config}
    (folder / "config.json").write_text(json.dumps(flat, indent=1))
    processor.tokenizer.save_pretrained(folder)
    return folder, original


def random_coalitions(prepared, rng, n: int = 6) -> np.ndarray:
    f, v = prepared.n_features, prepared.n_video
    rows = [np.ones(f, bool), np.zeros(f, bool)] + list(rng.random((n, f)) < 0.5)
    for _ in range(3):  # rows sharing one video part (the prefix-sharing path)
        row = rng.random(f) < 0.6
        row[:v] = rows[2][:v]
        rows.append(row)
    return np.array(rows)


def masked_pixels(processor, frames, video_keep) -> list:
    """CLIP-processed pixels per input with masked frames zeroed (after normalisation, as the paper)."""
    pixels, g = [], 0
    for f in frames:
        p = processor.image_processor(images=list(f), return_tensors="pt")["pixel_values"]
        for t in range(len(p)):
            if not video_keep[g]:
                p[t] = 0
            g += 1
        pixels.append(p)
    return pixels


def naive_splice(tokenizer, embed_weight, text: str, marker: str, visual: list) -> torch.Tensor:
    """Split ``text`` at ``marker``, embed each chunk (no special tokens), put the visual blocks between."""
    pieces = []
    for i, chunk in enumerate(text.split(marker)):
        if i:
            pieces.append(visual[i - 1])
        pieces.append(embed_weight[tokenizer(chunk, add_special_tokens=False)["input_ids"]])
    return torch.cat(pieces)[None]


def letter_logits(tokenizer, logits, k: int) -> np.ndarray:
    ids = [tokenizer.convert_tokens_to_ids(chr(ord("A") + i)) for i in range(k)]
    return logits[ids].float().numpy()


def explain_end_to_end(family: str, tmp_path: Path) -> None:
    """``vqa-shap explain … --model tiny-random/<family>`` on synthesised videos; rows load with load_dataset."""
    import datasets

    from vqa_shap.cli import main
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = [
        Question("ego-1", "egoschema", "summary", "What does c do?", ("Cut food", "Wash up", "Read"), 2,
                 inputs=(VisualInput("video", "ego/ego-1.mp4"),)),
        Question("object_motion_2", "hd-epic", "object_motion", "Where is the cup at <TIME 00:00:01.000 video 1>?",
                 ("left", "right"), 0,
                 inputs=(VisualInput("video", "P01/P01-a.mp4", start=0.0, end=4.0, label="video 1"),
                         VisualInput("image", "P01/P01-b.mp4", time=1.0, label="image 1"))),
    ]
    write_questions(tmp_path / "questions", "mixed", questions)
    synthesize_inputs(questions, tmp_path / "videos", n_frames=8, size=(48, 48), seed=0)
    out = tmp_path / "out"
    argv = ["explain", str(tmp_path / "questions"), "--config", "mixed", "--model", f"tiny-random/{family}",
            "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", "3", "--budget", "80",
            "--batch-size", "16", "--no-progress"]
    assert main(argv) == 0
    ds = datasets.load_dataset(str(out), name=f"tiny-random-{family}__mixed", split="test", download_mode="force_redownload")
    assert ds["qid"] == [q.qid for q in questions]
    for q, row in zip(questions, ds):
        assert row["error"] is None, row["error"]
        assert row["loader"] == family
        phi = np.asarray(row["shapley"])
        assert phi.shape == (len(row["features"]), q.n_options)
        full, empty = np.asarray(row["value_full"]), np.asarray(row["value_empty"])
        np.testing.assert_allclose(phi.sum(0), full - empty, atol=1e-4 * max(1.0, np.abs(full - empty).max()))
        assert np.abs(phi[[f["modality"] == "video" for f in row["features"]]]).max() > 0


def evaluate_committed_model(name: str, *, n_questions: int, seed: int, workdir: Path, layout: str):
    """A committed demo model (``name``, as ``--model`` names it) answering ``n_questions`` fresh
    questions of ``layout`` through the full pipeline on one torch thread (pick a ``seed`` used neither
    in its training nor for its recorded evaluation)."""
    from vqa_shap.demo.evaluation import evaluate
    from vqa_shap.loaders import resolve_model

    torch.set_num_threads(1)
    cls, checkpoint = resolve_model(name)
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    return evaluate(n_questions=n_questions, seed=seed, workdir=workdir, loader=loader, layout=layout)
