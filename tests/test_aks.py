"""Adaptive Keyframe Sampling: the judge-and-split selection on hand-made scores (worked by hand in
the comments), the candidate plan, and ``--sampler aks`` end to end with the demo model."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap.long_video.aks import AksError, RelevanceScorer, aks_select, plan_aks

RAMP = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # normalised: t/7
SPIKE_AND_PLATEAU = [0, 0, 1, 0, 0, 0, 0, 0] + [0.5] * 8


def test_peaked_scores_keep_the_top_frames():
    # 12 frames, k=2: s_top = 1, s_all = 2/12 -> 0.83 > 0.8: TOP keeps both peaks, no coverage
    assert aks_select([0] * 10 + [1, 1], 2) == [10, 11]


def test_flat_ramp_splits_for_coverage():
    # k=4: s_top = (4+5+6+7)/28 = 0.79, s_all = 0.5 -> 0.29 <= 0.8: split into [0,4) and [4,8) keeping 2 each;
    # [0,4): s_top = 2.5/7, s_all = 1.5/7 -> split into [0,2), [2,4) keeping 1 each -> their best: 1, 3;
    # [4,8) likewise -> 5, 7. Top-4 alone would be [4, 5, 6, 7].
    assert aks_select(RAMP, 4) == [1, 3, 5, 7]
    # k=3: left [0,4) keeps floor(3/2)=1 -> 3; right [4,8) keeps 2 -> split -> 5, 7
    assert aks_select(RAMP, 3) == [3, 5, 7]


def test_spike_and_plateau_threshold_and_depth():
    # root k=4: s_top = (1+.5+.5+.5)/4 = .625, s_all = 5/16 = .3125 -> diff .3125 <= .8: split;
    # [0,8) k=2: s_top = .5, s_all = .125 -> split -> [0,4): the spike 2; [4,8): all 0, the earliest 4;
    # [8,16) k=2: s_top = s_all = .5 -> split -> 8 and 12 (ties: the earliest)
    assert aks_select(SPIKE_AND_PLATEAU, 4) == [2, 4, 8, 12]
    # s_thr = 0.3 < .3125: the root is peaked -> top 4: the spike and the first three plateau frames
    assert aks_select(SPIKE_AND_PLATEAU, 4, threshold=0.3) == [2, 8, 9, 10]
    # L = 0: no split at all -> top-k;  L = 1: one split, then each half keeps its top 2
    assert aks_select(SPIKE_AND_PLATEAU, 4, depth=0) == [2, 8, 9, 10]
    assert aks_select(SPIKE_AND_PLATEAU, 4, depth=1) == [0, 2, 8, 9]


def test_edge_cases():
    assert aks_select([5.0] * 8, 4) == [0, 2, 4, 6]  # constant scores: pure coverage
    assert aks_select([3.0, 1.0], 4) == [0, 1]  # fewer candidates than k: all of them
    assert aks_select([0.2, 0.9, 0.1], 1) == [1]
    assert len(aks_select(np.random.default_rng(0).random(37), 7)) == 7  # exactly k for any k
    with pytest.raises(AksError, match="finite"):
        aks_select([0.1, float("nan")], 1)
    with pytest.raises(AksError, match="k >= 1"):
        aks_select([0.1, 0.2], 0)


class _Fixed(RelevanceScorer):
    """Relevance = a fixed function of each candidate's frame index (a hand-made scorer)."""

    name = "fixed"

    def __init__(self):
        self.seen = None

    def score(self, question, frames, plan):
        self.seen = [f.index for f in plan.frames]
        assert sum(len(a) for a in frames) == len(plan)
        return np.array([1.0 if f.index in (20, 22) else 0.0 for f in plan.frames])


def _video_question(tmp_path, n_video_frames=48):
    from vqa_shap.schema.records import Question, VisualInput
    from vqa_shap.synthetic_inputs import random_frames, write_video

    write_video(tmp_path / "v.mp4", random_frames(n_video_frames, (32, 32), seed=1), 4.0)
    return Question("aks-1", "synthetic", "t", "What colour is the square?", ("red", "blue"), 0,
                    inputs=(VisualInput("video", "v.mp4"),))


def test_plan_aks_keeps_the_selected_candidates(tmp_path):
    from vqa_shap.protocol import get_protocol
    from vqa_shap.protocol.samplers import linspace

    q = _video_question(tmp_path)
    scorer = _Fixed()
    plan, scores = plan_aks(get_protocol(), q, tmp_path, 2, scorer, threshold=0.5)
    assert scorer.seen == linspace(48, 8)  # 4 candidates per kept frame, uniform
    assert linspace(48, 8)[3:5] == [20, 26] and scores.tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    # s_top = (1+0)/2 = .5, s_all = 1/8 -> .375 <= .5: split -> [0,4) keeps its best (20), [4,8) the earliest (26)
    assert [f.index for f in plan.frames] == [20, 26] and [f.time for f in plan.frames] == [5.0, 6.5]


@pytest.mark.slow
def test_explain_sampler_aks_with_the_demo_model(tmp_path):
    import datasets
    import torch

    from vqa_shap.long_video.aks import ModelScorer
    from vqa_shap.cli import main
    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol

    torch.set_num_threads(1)
    q = _video_question(tmp_path / "videos")
    write_questions(tmp_path / "questions", "aks", [q])
    argv = ["explain", str(tmp_path / "questions"), "--config", "aks", "--model", DEMO_MODEL,
            "--video-root", str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "--frames", "4",
            "--sampler", "aks", "--budget", "8", "--no-progress",
            "--device", "cpu", "--dtype", "float32"]
    assert main(argv) == 0
    (row,) = datasets.load_dataset(str(tmp_path / "out"), name="demo__aks", split="test",
                                   download_mode="force_redownload")
    assert row["error"] is None, row["error"]
    times = [f["time"] for f in row["features"] if f["modality"] == "video"]

    # the same selection by hand: the model's confidence with each of the 16 candidates alone, then AKS
    cls, checkpoint = resolve_model(DEMO_MODEL)
    loader = cls.load(checkpoint, device="cpu", dtype="float32")
    proto = get_protocol()
    pool = proto.plan_frames(q, tmp_path / "videos", 16, sampler="aks", loader_family=loader.family)
    scores = ModelScorer(loader, proto).score(q, proto.load_frames(q, tmp_path / "videos", pool), pool)
    assert np.ptp(scores) > 0  # the candidates are not all equally relevant to the model
    assert times == [pool.frames[i].time for i in aks_select(scores, 4)]
