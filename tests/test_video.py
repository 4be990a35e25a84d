"""Video backend (decord / PyAV), frame folders, images, and synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest

from vqa_shap import video
from vqa_shap.schema.records import Question, VisualInput
from vqa_shap.synthetic_inputs import random_frames, synthesize_inputs, write_frame_folder, write_image, write_video

needs_decord = pytest.mark.skipif("decord" not in video.available_backends(), reason="decord not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 24-frame 64x48 video at 8 fps and the frames written into it."""
    frames = random_frames(24, (48, 64), seed=1)
    path = write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames, fps=8)
    return path, frames


@pytest.mark.parametrize("backend", video.BACKENDS)
def test_video_info(clip, backend):
    if backend not in video.available_backends():
        pytest.skip(f"{backend} not installed")
    info = video.video_info(clip[0], backend=backend)
    assert info == video.VideoInfo(n_frames=24, fps=8.0, duration=3.0, width=64, height=48)


def test_pyav_frames_match_what_was_written(clip):
    path, frames = clip
    decoded = video.read_frames(path, range(24), backend="pyav")
    assert decoded.dtype == np.uint8 and decoded.shape == (24, 48, 64, 3)
    assert np.abs(decoded.astype(int) - frames).max() <= 3  # near lossless
    # every frame is closest to the frame it should be (indices are exact)
    dist = np.abs(decoded[:, None].astype(int) - frames[None]).mean(axis=(2, 3, 4))
    assert (dist.argmin(axis=1) == np.arange(24)).all()


@needs_decord
def test_decord_and_pyav_give_identical_frames(clip):
    path, _ = clip
    indices = [23, 0, 5, 5, 11, 17]  # out of order and repeated
    a = video.read_frames(path, indices, backend="decord")
    b = video.read_frames(path, indices, backend="pyav")
    assert a.shape == b.shape == (6, 48, 64, 3)
    assert np.array_equal(a, b)
    # resizing happens after decoding, so it is identical too; the aspect ratio is not kept
    a = video.read_frames(path, indices, size=(32, 40), backend="decord")
    b = video.read_frames(path, indices, size=(32, 40), backend="pyav")
    assert a.shape == (6, 32, 40, 3) and np.array_equal(a, b)


@pytest.mark.parametrize("suffix", [".webm", ".mkv", ".avi"])
def test_other_containers_decode_identically(tmp_path, suffix):
    frames = random_frames(6, (32, 32), seed=4)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=2)
    infos = {b: video.video_info(path, backend=b) for b in video.available_backends()}
    decoded = {b: video.read_frames(path, [5, 0, 2], backend=b) for b in video.available_backends()}
    for b in video.available_backends():
        assert infos[b] == video.VideoInfo(6, 2.0, 3.0, 32, 32)
        assert np.abs(decoded[b].astype(int) - frames[[5, 0, 2]]).max() <= 3
        assert np.array_equal(decoded[b], decoded[video.available_backends()[-1]])


@pytest.mark.parametrize("seek_gap", [3, 10_000])
def test_pyav_seeking_reads_the_same_frames_as_decoding_through(tmp_path, monkeypatch, seek_gap):
    frames = random_frames(300, (32, 32), seed=5)
    path = tmp_path / "long.mp4"
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as container:  # keyframe every 50 frames, so seeks land mid-file
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.height = stream.width = 32
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast", "g": "50", "keyint_min": "50"}
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    monkeypatch.setattr(video, "PYAV_SEEK_GAP", seek_gap)
    indices = [299, 3, 120, 121, 49, 50, 51, 250, 3]
    got = video.read_frames(path, indices, backend="pyav")
    everything = video.read_frames(path, range(300), backend="pyav")  # one pass from the start
    assert np.array_equal(got, everything[indices])
    dist = np.abs(got[:, None].astype(int) - frames[None]).mean(axis=(2, 3, 4))
    assert list(dist.argmin(axis=1)) == indices
    if "decord" in video.available_backends():
        assert np.array_equal(got, video.read_frames(path, indices, backend="decord"))


def test_default_backend_prefers_decord():
    assert video.default_backend() == video.available_backends()[0]
    with pytest.raises(ValueError, match="valid backends"):
        video.read_frames("x.mp4", [0], backend="opencv")


def test_read_frames_at_times(clip):
    path, _ = clip
    by_time = video.read_frames_at(path, [0.0, 1.0, 1.49, 2.99, 10.0], backend="pyav")
    by_index = video.read_frames(path, [0, 8, 11, 23, 23], backend="pyav")
    assert np.array_equal(by_time, by_index)


def test_missing_corrupt_and_out_of_range_videos_name_the_path(tmp_path, clip):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(video.VideoError, match="nope.mp4: file not found"):
        video.video_info(missing)
    corrupt = tmp_path / "bad.mp4"
    corrupt.write_bytes(b"not a video at all" * 10)
    for backend in video.available_backends():
        with pytest.raises(video.VideoError, match="bad.mp4"):
            video.video_info(corrupt, backend=backend)
        with pytest.raises(video.VideoError, match="bad.mp4"):
            video.read_frames(corrupt, [0], backend=backend)
        with pytest.raises(video.VideoError, match="outside the video's 24 frames"):
            video.read_frames(clip[0], [3, 24], backend=backend)


def test_frame_folder_and_images(tmp_path):
    frames = random_frames(5, (32, 32), seed=2)
    folder = write_frame_folder(tmp_path / "clip_1", frames)
    assert sorted(p.name for p in folder.iterdir()) == [f"{k:05d}.jpg" for k in range(1, 6)]
    assert video.count_folder_frames(folder) == 5
    got = video.read_folder(folder, [1, 5, 3])  # file numbers start at 1
    assert got.shape == (3, 32, 32, 3)
    assert np.abs(got.astype(int) - frames[[0, 4, 2]]).mean() < 4  # JPEG, 4:4:4
    dist = np.abs(got[:, None].astype(int) - frames[None]).mean(axis=(2, 3, 4))
    assert list(dist.argmin(axis=1)) == [0, 4, 2]
    assert video.read_folder(folder, [2], size=(16, 24)).shape == (1, 16, 24, 3)
    with pytest.raises(video.VideoError, match="00006.jpg"):
        video.read_folder(folder, [6])
    with pytest.raises(video.VideoError, match="frame folder not found"):
        video.count_folder_frames(tmp_path / "none")

    image = write_image(tmp_path / "img.png", frames[0])
    assert np.array_equal(video.read_image(image), frames[0])  # PNG is lossless
    assert video.is_image_file(image) and not video.is_image_file(tmp_path / "v.mp4")
    assert np.array_equal(video.read_input(image, "image", [0]), frames[:1])
    assert video.read_input(folder, "frames", [1, 2]).shape == (2, 32, 32, 3)


@needs_decord
def test_decord_failure_falls_back_to_pyav_unless_forced(tmp_path):
    frames = random_frames(3, (32, 48), seed=3)  # decord 0.6 cannot copy 48-pixel-wide frames
    path = write_video(tmp_path / "narrow.mp4", frames, fps=1)
    with pytest.raises(video.VideoError, match="narrow.mp4: cannot decode frames"):
        video.read_frames(path, [0], backend="decord")
    assert np.array_equal(video.read_frames(path, [2, 0]), video.read_frames(path, [2, 0], backend="pyav"))
    assert video.video_info(path).n_frames == 3


def test_read_input_image_from_a_source_video(clip):
    path, _ = clip
    assert np.array_equal(video.read_input(path, "image", [7], backend="pyav"),
                          video.read_frames(path, [7], backend="pyav"))


def test_synthesize_inputs_covers_windows_images_and_folders(tmp_path):
    q1 = Question("hd_1", "hd-epic", "t", "Q?", ("a", "b"), 0, inputs=(
        VisualInput("video", "P01/P01-x.mp4", start=30.0, end=40.0),
        VisualInput("image", "P01/P01-y.mp4", time=12.5, label="image 1"),
        VisualInput("video", "P01/P01-y.mp4", label="video 2")))
    q2 = Question("mv_1", "mvbench", "episodic_reasoning", "Q?", ("a", "b"), 0, inputs=(
        VisualInput("frames", "tvqa/s01_clip", start=1.0, end=9.0, fps=3.0),))
    q3 = Question("img_1", "x", "t", "Q?", ("a",), 0, inputs=(VisualInput("image", "imgs/a.png", label="image 1"),))
    written = synthesize_inputs([q1, q2, q3], tmp_path, n_frames=8, size=(32, 48), fps=1.0)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "P01/P01-x.mp4", "P01/P01-y.mp4", "imgs/a.png", "tvqa/s01_clip"]
    assert video.video_info(tmp_path / "P01/P01-x.mp4").n_frames == 41       # covers end 40 s at 1 fps
    assert video.video_info(tmp_path / "P01/P01-y.mp4").n_frames == 14       # covers image time 12.5 s
    assert video.count_folder_frames(tmp_path / "tvqa/s01_clip") == 30       # 9 s at 3 fps + 1
    assert video.read_image(tmp_path / "imgs/a.png").shape == (32, 48, 3)
    # existing files are kept, the same call writes the same content
    assert synthesize_inputs([q1], tmp_path, n_frames=8, size=(32, 48)) == []
    again = synthesize_inputs([q1], tmp_path / "again", n_frames=8, size=(32, 48))
    assert len(again) == 2
    assert np.array_equal(video.read_frames(tmp_path / "P01/P01-x.mp4", [3]),
                          video.read_frames(tmp_path / "again/P01/P01-x.mp4", [3]))


def test_write_video_validates_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32), 1)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 7, 8, 3), np.uint8), 1)
