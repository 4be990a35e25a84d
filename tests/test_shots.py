"""Shot detection: synthetic videos with known cuts, both detectors, the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vqa_shap.long_video.shots import FrameDiffDetector, Shots, get_detector, shot_of, video_shots
from vqa_shap.long_video.shot_detector import ShotError
from vqa_shap.synthetic_inputs import shot_frames, write_frame_folder, write_video

#: Shot lengths with a 1-frame shot and shots of very different lengths.
LENGTHS = [5, 3, 9, 1, 6, 4]
#: The adaptive detector compares a frame with its neighbours (2 on each side): its shots are >= 3 frames.
LONG_LENGTHS = [6, 4, 9, 3, 7]


def test_shot_frames_cuts_are_cumulative_lengths():
    frames, cuts = shot_frames(LENGTHS, seed=3)
    assert frames.shape == (28, 64, 64, 3) and cuts == (5, 8, 17, 18, 24)
    assert not np.array_equal(frames[0], frames[1])  # per-frame noise: a shot is not frozen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diff_detector_finds_exact_cuts_in_arrays(seed):
    frames, cuts = shot_frames(LENGTHS, seed=seed)
    assert FrameDiffDetector().cuts(frames) == cuts


def test_diff_detector_no_cut_in_one_shot_and_min_shot():
    frames, _ = shot_frames([12], seed=0)
    assert FrameDiffDetector().cuts(frames) == ()
    frames, cuts = shot_frames([4, 1, 5], seed=0)
    assert FrameDiffDetector().cuts(frames) == cuts == (4, 5)
    assert FrameDiffDetector(min_shot=2).cuts(frames) == (4,)  # the 1-frame shot merges into the next


def test_detector_rejects_bad_frames_and_unknown_name():
    with pytest.raises(ShotError, match="uint8"):
        FrameDiffDetector().cuts(np.zeros((3, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ShotError, match="valid shot detectors: diff, content, adaptive"):
        get_detector("transnet")


@pytest.mark.parametrize("name,lengths", [("content", LENGTHS), ("adaptive", LONG_LENGTHS)])
def test_scenedetect_detectors_find_exact_cuts(name, lengths):
    pytest.importorskip("scenedetect", reason="the optional extra 'shots' is not installed")
    for seed in (0, 1):
        frames, cuts = shot_frames(lengths, seed=seed)
        assert get_detector(name).cuts(frames, fps=2.0) == cuts


@pytest.mark.parametrize("name", ["diff", "content"])
def test_video_shots_on_encoded_video_and_cache(tmp_path, name):
    if name != "diff":
        pytest.importorskip("scenedetect", reason="the optional extra 'shots' is not installed")
    frames, cuts = shot_frames(LENGTHS, seed=5)
    path = write_video(tmp_path / "v.mp4", frames, 2.0)
    shots = video_shots(path, detector=name, cache_dir=tmp_path / "cache")
    assert shots == Shots(28, 2.0, cuts, name)
    assert shots.bounds(2) == (8, 17) and shots.times(2) == (4.0, 8.5) and len(shots) == 6
    (cached,) = list((tmp_path / "cache").iterdir())
    # the cache is what is read back: edit it and the next call returns the edit
    data = json.loads(cached.read_text())
    cached.write_text(json.dumps({**data, "cuts": [7]}))
    assert video_shots(path, detector=name, cache_dir=tmp_path / "cache").cuts == (7,)
    # another detector setting is another cache entry
    assert video_shots(path, detector=FrameDiffDetector(k=5.0), cache_dir=tmp_path / "cache").cuts == cuts


def test_video_shots_frame_folder_and_image(tmp_path):
    frames, cuts = shot_frames([3, 4, 2], seed=2)
    folder = write_frame_folder(tmp_path / "f", frames, quality=98)
    # frame folders count their files from 1: the cuts are file numbers, the times at the folder's fps
    shots = video_shots(folder, "frames", fps=2.0, detector="diff")
    assert shots == Shots(9, 2.0, tuple(c + 1 for c in cuts), "diff", first=1) and cuts == (3, 7)
    assert shots.bounds(0) == (1, 4) and shots.bounds(2) == (8, 10) and shots.times(1) == (2.0, 4.0)
    assert video_shots(tmp_path / "x.png", "image", detector="diff") == Shots(1, 1.0, (), "diff")


def test_shot_of():
    assert shot_of((5, 8, 17), [0, 4, 5, 7, 8, 16, 17, 30]) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert shot_of((), [0, 9]) == [0, 0]
