"""The pollard2025 protocol: word split, normalisation, players, prompts, samplers, frame plans."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from vqa_shap.errors import RegistryError
from vqa_shap.protocol import PROTOCOLS, get_protocol
from vqa_shap.protocol.samplers import (SAMPLERS, fps1_capped, hd_epic_windows, linspace, mvbench_bounds,
                                        segment_midpoints, uniform_edges)
from vqa_shap.protocol.base import FramePlan, FrameRef, Protocol
from vqa_shap.protocol.pollard2025 import Pollard2025
from vqa_shap.protocol.words import parse_tags, split_words
from vqa_shap.schema.records import Question, VisualInput

BENCHMARKS = ("egoschema", "hd-epic", "mvbench", "lvbench")


def _question(benchmark="egoschema", question="What is c doing.", options=("Cooking food", "Reading"),
              inputs=(), qid="q1"):
    return Question(qid=qid, benchmark=benchmark, task="t", question=question, options=tuple(options),
                    answer=0, inputs=tuple(inputs))


# ------------------------------------------------------------------------------ registry


def test_every_protocol_is_registered_and_loads():
    assert PROTOCOLS.names() == ["pollard2025"]
    for name in PROTOCOLS:
        proto = get_protocol(name)
        assert isinstance(proto, Protocol) and proto.name == name
    assert isinstance(get_protocol(), Pollard2025)


def test_unknown_protocol_lists_valid_names():
    with pytest.raises(RegistryError, match="pollard2025"):
        get_protocol("nope")


# ------------------------------------------------------------------------------ words


def test_split_words_matches_the_paper_regex():
    assert split_words("Cup/glass & bottle, c's 50% <TIME 00:01:02.500 video 1>?") == [
        "Cup", "/", "glass", "bottle", ",", "c's", "50", "<TIME 00:01:02.500 video 1>", "?"]
    assert split_words("“quoted” – a+b=c [x] {y} @z") == ["quoted", "a", "b", "c", "x", "y", "z"]
    assert split_words("under_score-dash") == ["under_score", "-", "dash"]


def test_normalisation_capitalises_and_appends_question_mark():
    proto = get_protocol()
    q = _question(question="What did Toby say to C.", options=("  Hello THERE  ", "Bye"))
    names = [f.name for f in proto.text_features(q)]
    assert names == ["What", "did", "toby", "say", "to", "c", ".", "?", "Hello", "there", "Bye"]
    # already a question: nothing appended
    assert [f.name for f in proto.text_features(_question(question="Why?"))][:2] == ["Why", "?"]
    # HD-EPIC keeps its case (tags are case sensitive)
    hd = _question("hd-epic", question="Where is the BBQ <TIME 00:00:05.000 video 1>", options=("On TOP",))
    assert [f.name for f in proto.text_features(hd)] == [
        "Where", "is", "the", "BBQ", "<TIME 00:00:05.000 video 1>", "?", "On", "TOP"]


def test_text_feature_modalities_and_options():
    proto = get_protocol()
    feats = proto.text_features(_question(question="Why?", options=("a b", "c")))
    assert [(f.modality, f.option) for f in feats] == [
        ("question", -1), ("question", -1), ("answer", 0), ("answer", 0), ("answer", 1)]


def _build_questions(pollard_dir) -> dict[str, list[Question]]:
    """The fixture questions per benchmark, built by helper A's pollard2025 builder."""
    from vqa_shap.builders import get_builder

    configs = get_builder("pollard2025").build(pollard_dir).configs
    return {bench: configs[bench] for bench in BENCHMARKS}


def test_text_features_equal_the_published_csv_elements(pollard_dir):
    """Oracle: for every fixture question with a published Shapley CSV, our text players are the
    CSV's element column after its frame rows."""
    proto = get_protocol()
    questions = _build_questions(pollard_dir)
    checked = 0
    for bench in BENCHMARKS:
        for q in questions[bench]:
            for model in ("frozenbilm", "internvideo"):
                path = pollard_dir / "shapley" / model / bench / f"{q.qid}_5000_joint.csv"
                if not path.exists():
                    continue
                with path.open(newline="") as fh:
                    elements = [row["element"] for row in csv.DictReader(fh)]
                words = [e for e in elements if not (e.startswith("frame_") and e[6:].isdigit())]
                assert elements[: len(elements) - len(words)] == [f"frame_{i}" for i in range(len(elements) - len(words))]
                assert [f.name for f in proto.text_features(q)] == words, (model, bench, q.qid)
                checked += 1
    assert all(len(questions[b]) == 12 for b in BENCHMARKS)
    published = sum(1 for b in BENCHMARKS for _ in (pollard_dir / "shapley").glob(f"*/{b}/*_5000_joint.csv"))
    assert checked == published >= 4 * 12  # every published table belongs to a fixture question


# ------------------------------------------------------------------------------ players


def _plan(*inputs_frames):
    """A plan with frames per input: _plan(3, 2) -> input 0 has 3 frames, input 1 has 2."""
    refs = [FrameRef(i, k, float(k)) for i, n in enumerate(inputs_frames) for k in range(n)]
    return FramePlan(tuple(refs))


def test_features_put_frames_first_with_global_numbering():
    proto = get_protocol()
    q = _question(question="Why?", options=("a", "b"),
                  inputs=(VisualInput("video", "a.mp4"), VisualInput("video", "b.mp4", label="video 2")))
    feats = proto.features(q, _plan(3, 2))
    assert [f.name for f in feats] == ["frame_0", "frame_1", "frame_2", "frame_3", "frame_4", "Why", "?", "A", "B"]
    assert [f.input for f in feats[:5]] == [0, 0, 0, 1, 1]
    assert [f.time for f in feats[:5]] == [0.0, 1.0, 2.0, 0.0, 1.0]
    assert all(f.modality == "video" for f in feats[:5])
    assert proto.features(q, None) == proto.text_features(q)


def test_temporal_unit_groups_consecutive_frames_of_one_input():
    proto = get_protocol()
    q = _question(question="Why?", options=("a",))
    plan = _plan(3, 2)
    feats = proto.features(q, plan, temporal_unit=2)
    # a group never spans two inputs; an input's last group may be shorter
    assert [f.name for f in feats[:3]] == ["frame_0-1", "frame_2", "frame_3-4"]
    assert [(f.input, f.time) for f in feats[:3]] == [(0, 0.0), (0, 2.0), (1, 0.0)]
    assert proto.frame_groups(plan, 2) == [(0, 1), (2,), (3, 4)]
    assert proto.n_video_players(plan, 2) == 3 and proto.n_video_players(plan) == 5
    assert proto.n_video_players(None) == 0
    with pytest.raises(ValueError):
        proto.frame_groups(plan, 0)


# ------------------------------------------------------------------------------ prompts


EXPERT = ("You are an expert video analyser, and your job is to answer the multiple choice question by "
          "giving only the letter identifying the answer. Do not give any other information. For example, "
          "acceptable answers are 'A' or 'B' or 'C' etc.. You must give an answer, even if you are not sure.")


def test_render_unmasked_instruction_and_letters():
    proto = get_protocol()
    q = _question(question="What is c doing.", options=("Cooking food", "reading a BOOK", "Sleeping"))
    n = len(proto.text_features(q))
    prompt = proto.render(q, None, np.ones(n, bool))
    assert prompt.instruction == (
        "Select the best answer to the following multiple-choice question based on the video.\n"
        "What is c doing . ?\nOptions:\n(A) Cooking food\n(B) Reading a book\n(C) Sleeping\n"
        "Answer with the option's letter from the given choices directly and only give the best option. "
        "The best answer is: ")
    assert prompt.system == EXPERT
    assert prompt.inputs == ()
    assert prompt.options == ("Cooking food", "Reading a book", "Sleeping")


def test_render_masked_words_leave_blanks():
    proto = get_protocol()
    q = _question(question="What is c doing?", options=("Cooking food", "Reading"))
    keep = np.ones(len(proto.text_features(q)), bool)
    keep[1] = False   # "is"
    keep[6] = False   # "food" (question: What is c doing ? = 5 words)
    keep[7] = False   # "Reading" (the whole option)
    prompt = proto.render(q, None, keep)
    assert prompt.question == "What   c doing ?"
    assert prompt.options == ("Cooking  ", " ")
    assert "\n(A) Cooking  \n(B)  \n" in prompt.instruction
    with pytest.raises(ValueError, match="text_keep"):
        proto.render(q, None, keep[:-1])


def test_system_prompts_per_benchmark():
    proto = get_protocol()
    sys = {b: proto.render(_question(b, question="Why?", options=("a",)), None, np.ones(3, bool)).system
           for b in (*BENCHMARKS, "other")}
    assert sys["egoschema"] == sys["lvbench"] == sys["other"] == EXPERT
    assert sys["hd-epic"] == EXPERT + (" Videos are at 1 fps, and timestamps are MM:SS. Bounding boxes are in "
                                       "the format (ymin, xmin, ymax, xmax) relative to an image size of 1000x1000.")
    assert sys["mvbench"].startswith("Carefully watch the video and pay attention to the cause")
    assert sys["mvbench"].endswith("select the best option that accurately addresses the question.")


def test_parse_tags_time_and_bbox():
    # time relative to the input's window start, divided by the stride, formatted MM:SS
    assert parse_tags("at <TIME 00:13:21.900 video 1> now", 2.0, {"video 1": 781.5}) == "at 00:10 now"
    assert parse_tags("<TIME 01:10:00.000 video 2>", 1.0) == "01:10:00"
    assert parse_tags("<BBOX 743.713 878.496 873.682 998.838>", 1.0) == "(528, 623, 620, 709)"
    # stride -1 (image-only questions) wraps as the paper's gmtime
    assert parse_tags("<TIME 00:00:12.000 image 1>", -1.0) == time.strftime("%M:%S", time.gmtime(-12)) == "59:48"


def test_hd_epic_tags_rewritten_after_masking():
    proto = get_protocol()
    q = _question("hd-epic", question="Is <BBOX 140.8 281.6 422.4 563.2> seen at <TIME 00:00:30.000 video 1>?",
                  options=("Yes <TIME 00:00:10.000 video 1>", "No"),
                  inputs=(VisualInput("video", "P01/x.mp4", start=20.0, end=60.0),))
    names = [f.name for f in proto.text_features(q)]
    assert names[:6] == ["Is", "<BBOX 140.8 281.6 422.4 563.2>", "seen", "at", "<TIME 00:00:30.000 video 1>", "?"]
    plan = FramePlan((FrameRef(0, 20, 0.0),), stride=5.0)
    keep = np.ones(len(names), bool)
    full = proto.render(q, plan, keep)
    assert "Is (100, 200, 300, 400) seen at 00:02 ?\n" in full.instruction          # (30-20)/5 = 2 s
    assert "(A) Yes 59:58\n" in full.instruction                                     # (10-20)/5 = -2 s wraps
    assert full.question.endswith("<TIME 00:00:30.000 video 1> ?")                   # raw masked text kept
    keep[4] = False  # the TIME tag: masked tags disappear (no rewrite of a blank)
    masked = proto.render(q, plan, keep)
    assert "Is (100, 200, 300, 400) seen at   ?\n" in masked.instruction
    # no plan: times shown in the videos' own seconds
    assert "seen at 00:10 ?" in proto.render(q, None, np.ones(len(names), bool)).instruction


def test_prompt_inputs_follow_the_plan():
    proto = get_protocol()
    q = _question("hd-epic", question="Why?", options=("a",),
                  inputs=(VisualInput("video", "v.mp4"), VisualInput("image", "v.mp4", time=3.0, label="image 1"),
                          VisualInput("video", "w.mp4", label="video 2")))
    plan = FramePlan((FrameRef(0, 1, 0.0), FrameRef(0, 5, 2.0), FrameRef(2, 3, 0.0)), stride=2.0)
    prompt = proto.render(q, plan, np.ones(3, bool))
    assert [(p.label, p.n_frames, p.times) for p in prompt.inputs] == [
        ("video 1", 2, (0.0, 2.0)), ("video 2", 1, (0.0,))]


def test_frame_baselines_and_default_samplers():
    proto = get_protocol()
    assert proto.frame_baseline("llava_onevision") == "normalized_zero"
    assert proto.frame_baseline("video_llama3") == "black"
    assert proto.frame_baseline("qwen2_5_vl") == "normalized_zero"
    assert proto.frame_baseline("unknown") == "normalized_zero"
    assert proto.default_sampler("video_llama3") == "fps1_capped"
    assert proto.default_sampler("video_llama2") == "segment_midpoints"
    assert proto.default_sampler("internvideo") == "uniform_edges"
    assert proto.default_sampler("llava_onevision") == "linspace"
    assert proto.default_sampler("video_llama3", "mvbench") == "mvbench_bounds"
    assert proto.default_sampler("video_llama3", "hd-epic") == "hd_epic_windows"
    assert proto.default_sampler(None, "lvbench") == "linspace"
    assert proto.default_sampler("frozenbilm") == "linspace" and proto.frame_baseline(None) == "normalized_zero"
    assert set(proto.BENCHMARK_SAMPLERS.values()) <= set(SAMPLERS)


def test_every_family_setting_names_a_registered_loader_and_valid_values():
    """The per-family settings come from the family modules' declarations: each names a registered
    loader, a registered protocol, a known baseline and a known sampler (llava_video is no family:
    LLaVA-Video checkpoints are llava_onevision ones)."""
    from vqa_shap.loaders import LOADERS
    from vqa_shap.families import families
    from vqa_shap.protocol.base import BASELINES

    declared = {name: f.protocols for name, f in families().items() if f.protocols}
    assert {"llava_onevision", "qwen2_5_vl", "video_llama3", "longva", "video_llama2", "internvideo"} <= set(declared)
    assert "llava_video" not in LOADERS
    for name, protocols in declared.items():
        assert name in LOADERS.names()
        for protocol, settings in protocols.items():
            assert protocol in PROTOCOLS
            assert settings.get("baseline", "normalized_zero") in BASELINES, name
            assert settings.get("sampler", "linspace") in SAMPLERS, name
            proto = get_protocol(protocol)
            assert proto.frame_baseline(name) == settings.get("baseline", proto.default_baseline)


# ------------------------------------------------------------------------------ samplers (formulas)


def test_linspace_sampler():
    assert linspace(100, 5) == [0, 24, 49, 74, 99]
    assert linspace(100, 5, last=98) == [0, 24, 49, 73, 98]  # LVBench: max_frame - 1 = len - 2
    assert linspace(3, 5) == [0, 0, 1, 1, 2]


def test_segment_midpoints_sampler():
    # seg = 99/4 = 24.75: round(12.375 + 1e-6), round(37.125…), round(61.875…), round(86.625…)
    assert segment_midpoints(100, 4) == [12, 37, 62, 87]
    assert segment_midpoints(9, 4) == [1, 3, 5, 7]  # seg = 2: 1, 3, 5, 7


def test_uniform_edges_sampler():
    # edges int(linspace(0, 100, 5)) = 0, 25, 50, 75, 100 -> (0+25-1)//2 = 12, 37, 62, 87
    assert uniform_edges(100, 4) == [12, 37, 62, 87]
    # edges 0, 3, 6, 10 -> 1, 4, 7
    assert uniform_edges(10, 3) == [1, 4, 7]


def test_fps1_capped_sampler():
    idx, times = fps1_capped(n_total=100, fps=10.0, n=180)        # 10 s -> 10 frames at 1 fps
    assert idx == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90] and times == [float(k) for k in range(10)]
    idx, times = fps1_capped(n_total=250, fps=25.0 / 3, n=4)      # 30 s, capped at 4 by linspace
    assert times == [0.0, 9.0, 19.0, 29.0]                        # int(linspace(0, 29, 4)) = 0, 9, 19, 29
    assert idx == [0, 75, 158, 241]                               # floor(k * 25/3)
    assert fps1_capped(n_total=5, fps=30.0, n=8) == ([0], [0.0])  # shorter than 1 s: one frame


def test_mvbench_bounds_sampler():
    # unbounded video of 100 frames: start 0, end 99, seg 24.75
    assert mvbench_bounds(4, 25.0, 99) == [int(12.375 + r) for r in (0, 25, 50, 74)]
    # bounded: 2.1..21.6 s at 10 fps -> start 21, end 216, seg 48.75
    assert mvbench_bounds(4, 10.0, 299, (2.1, 21.6)) == [
        int(21 + 24.375 + np.round(48.75 * k)) for k in range(4)] == [45, 94, 143, 191]
    # half-to-even rounding (numpy): seg 2.5 -> round(2.5) = 2, round(7.5) = 8
    assert mvbench_bounds(4, 1.0, 10) == [1, 3, 6, 9]
    # frame folder: 3 fps, max_frame = number of files, first index 1
    assert mvbench_bounds(3, 3.0, 30, None, first_idx=1) == [5, 15, 24]   # seg 29/3
    assert mvbench_bounds(3, 3.0, 30, (1.0, 6.0), first_idx=1) == [5, 10, 15]  # 3..18, seg 5: 5.5+0/5/10


def test_hd_epic_windows_sampler():
    # two windows (10 s and 20 s at 1 fps) + one image, 10 frames requested -> 9 video frames
    chosen, stride = hd_epic_windows([(100.0, 110.0), (0.0, 20.0)], n_images=1, n=10)
    positions = np.linspace(0, 29, 9).astype(int)  # 0, 3, 7, 10, 14, 18, 21, 25, 29
    candidates = [(0, 100 + k) for k in range(10)] + [(1, k) for k in range(20)]
    assert chosen == [candidates[p] for p in positions]
    assert chosen[:3] == [(0, 100), (0, 103), (0, 107)] and chosen[3] == (1, 0)
    assert stride == pytest.approx(30 / 9)
    # fewer candidates than requested: capped, stride = 3 s / 3 frames
    assert hd_epic_windows([(5.0, 8.0)], 0, 10) == ([(0, 5), (0, 6), (0, 7)], 1.0)
    # images only: stride -1 as the paper
    assert hd_epic_windows([], 2, 10) == ([], -1.0)


def test_sampler_table_applies_the_formulas_to_one_input():
    """Every name of the table is a function over one input: (indices, times) from the formulas."""
    from vqa_shap.protocol.samplers import get_sampler

    assert set(SAMPLERS) == {"linspace", "segment_midpoints", "uniform_edges", "fps1_capped",
                             "mvbench_bounds", "hd_epic_windows", "aks"}
    fps = 4.0
    assert get_sampler("aks")(100, fps, 16, "") == (linspace(100, 16), [k / fps for k in linspace(100, 16)])
    assert get_sampler("linspace")(100, fps, 5, "egoschema") == (linspace(100, 5), [k / fps for k in linspace(100, 5)])
    assert get_sampler("linspace")(100, fps, 5, "lvbench")[0] == linspace(100, 5, last=98)
    assert get_sampler("segment_midpoints")(100, fps, 4, "")[0] == segment_midpoints(100, 4)
    assert get_sampler("uniform_edges")(10, fps, 3, "")[0] == uniform_edges(10, 3)
    assert get_sampler("fps1_capped")(250, 25.0 / 3, 4, "") == fps1_capped(250, 25.0 / 3, 4)
    assert get_sampler("mvbench_bounds")(100, 25.0, 4, "") == (mvbench_bounds(4, 25.0, 99),
                                                               [k / 25.0 for k in mvbench_bounds(4, 25.0, 99)])
    chosen, stride = hd_epic_windows([(0.0, 20.0)], 0, 6, 1.0)  # one whole 20 s video at 1 fps
    assert get_sampler("hd_epic_windows")(20, 1.0, 6, "hd-epic") == ([i for _, i in chosen],
                                                                      [i / stride for _, i in chosen])
    with pytest.raises(ValueError, match="unknown sampler 'random'; valid samplers: linspace, segment_midpoints"):
        get_sampler("random")


def test_protocol_package_holds_the_registry_and_names_only_its_own():
    import vqa_shap.protocol as package

    assert package.__all__ == ["PROTOCOLS", "get_protocol", "check_family_protocols"]
    assert all(hasattr(package, name) for name in package.__all__)
    assert not hasattr(package, "_letter") and not hasattr(package, "FramePlan")  # one import path per name


# ------------------------------------------------------------------------------ frame plans on files


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    """Synthetic inputs: a 40-frame 4-fps clip, a 1-fps 50-s video, a 20-s 1-fps video, a frame folder."""
    from vqa_shap.synthetic_inputs import random_frames, write_frame_folder, write_video

    root = tmp_path_factory.mktemp("videos")
    write_video(root / "ego.mp4", random_frames(40, (32, 32), 0), fps=4)
    write_video(root / "P01/P01-a.mp4", random_frames(50, (32, 32), 1), fps=1)
    write_video(root / "P01/P01-b.mp4", random_frames(20, (32, 32), 2), fps=1)
    write_frame_folder(root / "tvqa/clip", random_frames(30, (32, 32), 3))
    return root


def _ego():
    return _question(inputs=(VisualInput("video", "ego.mp4"),))


def test_plan_single_video_samplers(video_root):
    proto = get_protocol()
    q = _ego()
    plan = proto.plan_frames(q, video_root, 8, loader_family="llava_onevision")
    assert [f.index for f in plan.frames] == linspace(40, 8) == [0, 5, 11, 16, 22, 27, 33, 39]
    assert [f.time for f in plan.frames] == [i / 4 for i in linspace(40, 8)]
    assert plan.stride is None and plan.inputs == (0,)
    assert [f.index for f in proto.plan_frames(q, video_root, 4, loader_family="video_llama2").frames] == \
        segment_midpoints(40, 4)
    assert [f.index for f in proto.plan_frames(q, video_root, 4, sampler="uniform_edges").frames] == \
        uniform_edges(40, 4)
    # VL3: 10 s at 1 fps, capped at 4 by linspace -> seconds 0, 3, 6, 9 -> frames 0, 12, 24, 36
    vl3 = proto.plan_frames(q, video_root, 4, loader_family="video_llama3")
    assert [(f.index, f.time) for f in vl3.frames] == [(0, 0.0), (12, 3.0), (24, 6.0), (36, 9.0)]
    # LVBench: linspace up to len - 2 (the last frame is never used)
    lv = proto.plan_frames(_question("lvbench", inputs=(VisualInput("video", "ego.mp4"),)), video_root, 4)
    assert [f.index for f in lv.frames] == [0, 12, 25, 38]
    with pytest.raises(ValueError, match="valid samplers"):
        proto.plan_frames(q, video_root, 4, sampler="random")


def test_plan_mvbench_bounded_video_and_frame_folder(video_root):
    proto = get_protocol()
    bounded = _question("mvbench", inputs=(VisualInput("video", "ego.mp4", start=2.0, end=8.0),))
    plan = proto.plan_frames(bounded, video_root, 4)
    # fps 4, max_frame 39: start 8, end min(32, 39) = 32, seg 6 -> 11, 17, 23, 29
    assert [f.index for f in plan.frames] == mvbench_bounds(4, 4.0, 39, (2.0, 8.0)) == [11, 17, 23, 29]
    assert [f.time for f in plan.frames] == [11 / 4, 17 / 4, 23 / 4, 29 / 4]
    folder = _question("mvbench", inputs=(VisualInput("frames", "tvqa/clip", start=1.0, end=6.0, fps=3.0),))
    plan = proto.plan_frames(folder, video_root, 3)
    assert [f.index for f in plan.frames] == [5, 10, 15]  # file numbers: start 3, end 18, seg 5
    assert [f.time for f in plan.frames] == [5 / 3, 10 / 3, 15 / 3]
    (frames,) = proto.load_frames(folder, video_root, plan, size=(16, 16))
    assert frames.shape == (3, 16, 16, 3)
    from vqa_shap.video import read_folder
    assert np.array_equal(frames, read_folder(video_root / "tvqa/clip", [5, 10, 15], size=(16, 16)))


def _hd(*inputs):
    return _question("hd-epic", question="Why?", options=("a",), inputs=inputs)


def test_plan_hd_epic_image_and_two_windows(video_root):
    proto = get_protocol()
    q = _hd(VisualInput("video", "P01/P01-a.mp4", start=30.5, end=40.9),       # truncated to 30..40
            VisualInput("image", "P01/P01-a.mp4", time=12.599, label="image 1"),
            VisualInput("video", "P01/P01-b.mp4", label="video 2"))              # no bounds: whole 20 s
    plan = proto.plan_frames(q, video_root, 10)
    chosen, stride = hd_epic_windows([(30.0, 40.0), (0.0, 20.0)], 1, 10)
    assert stride == plan.stride == pytest.approx(30 / 9)
    assert plan.inputs == (0, 1, 2)
    expected = [(0, local) for v, local in chosen if v == 0] + [(1, 12)] + [(2, local) for v, local in chosen if v == 1]
    assert [(f.input, f.index) for f in plan.frames] == expected
    assert [f.index for f in plan.frames if f.input == 0] == [30, 33, 37]
    # times as the paper's VL3 timestamps: the frame's 1-fps index in its file / stride
    assert [f.time for f in plan.frames if f.input == 0] == pytest.approx([9.0, 9.9, 11.1])
    assert [f.time for f in plan.frames if f.input == 1] == pytest.approx([12 / stride])
    frames = proto.load_frames(q, video_root, plan)
    assert [a.shape[0] for a in frames] == [3, 1, 6]
    from vqa_shap.video import read_frames
    assert np.array_equal(frames[1][0], read_frames(video_root / "P01/P01-a.mp4", [12])[0])
    # features and prompt follow the plan
    feats = proto.features(q, plan)
    assert [f.name for f in feats[:10]] == [f"frame_{i}" for i in range(10)]
    assert [p.label for p in proto.render(q, plan, np.ones(3, bool)).inputs] == ["video 1", "image 1", "video 2"]


def test_plan_hd_epic_drops_inputs_without_frames_and_start_only_windows(video_root):
    proto = get_protocol()
    q = _hd(VisualInput("video", "P01/P01-a.mp4", start=30.0, end=40.0),
            VisualInput("image", "P01/P01-a.mp4", time=5.0, label="image 1"),
            VisualInput("video", "P01/P01-b.mp4", label="video 2"))
    plan = proto.plan_frames(q, video_root, 2)  # one video frame: linspace(0, 29, 1) = [0] -> video 1
    assert [(f.input, f.index) for f in plan.frames] == [(0, 30), (1, 5)]
    assert plan.inputs == (0, 1) and plan.stride == 30.0
    # only a start: the window becomes [start, start + 1 s] (as the paper's end = -1 handling)
    start_only = _hd(VisualInput("video", "P01/P01-a.mp4", start=7.2))
    plan = proto.plan_frames(start_only, video_root, 5)
    assert [f.index for f in plan.frames] == [7] and plan.stride == 1.0
    # images only: stride -1 as the paper
    images = _hd(VisualInput("image", "P01/P01-b.mp4", time=3.0, label="image 1"))
    plan = proto.plan_frames(images, video_root, 5)
    assert [(f.input, f.index) for f in plan.frames] == [(0, 3)] and plan.stride == -1.0


def test_plan_missing_video_names_the_path(tmp_path):
    from vqa_shap.video import VideoError

    with pytest.raises(VideoError, match="ego.mp4: file not found"):
        get_protocol().plan_frames(_ego(), tmp_path, 4)


def test_protocol_module_is_light():
    import subprocess
    import sys

    code = ("import sys, vqa_shap.protocol, vqa_shap.video, vqa_shap.synthetic_inputs;"
            "print([m for m in ('torch', 'transformers', 'datasets', 'av', 'decord', 'PIL') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_fixture_questions_plan_load_and_render_on_synthetic_videos(pollard_dir, tmp_path):
    """Every fixture question, on synthetic videos at the paths its annotation names: the plan, the
    decoded frames, the players and the rendered prompt agree with each other and with the paper's sampling."""
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = _build_questions(pollard_dir)
    all_questions = [q for b in BENCHMARKS for q in questions[b]]
    synthesize_inputs(all_questions, tmp_path, n_frames=12, size=(16, 16), fps=1.0)
    proto = get_protocol()
    for q in all_questions:
        plan = proto.plan_frames(q, tmp_path, 8, loader_family="llava_onevision")
        frames = proto.load_frames(q, tmp_path, plan, size=(8, 8))
        assert sum(a.shape[0] for a in frames) == len(plan) <= 8, q.qid
        assert all(a.shape[1:] == (8, 8, 3) and a.dtype == np.uint8 for a in frames)
        feats = proto.features(q, plan)
        assert len(feats) == len(plan) + len(proto.text_features(q))
        prompt = proto.render(q, plan, np.ones(len(feats) - len(plan), bool))
        assert [p.n_frames for p in prompt.inputs] == [a.shape[0] for a in frames]
        assert prompt.instruction.count("\n(") == q.n_options
        if q.benchmark == "hd-epic":
            assert "<TIME" not in prompt.instruction and "<BBOX" not in prompt.instruction
            assert plan.stride > 0
        else:
            assert len(plan) == 8 and plan.stride is None
    # the counting question: a whole video (14 s: synthesized to cover the image at 12.599 s) and the
    # image (its source video's frame at int(12.599) = 12 s) -> 7 + 1 frames
    (q94,) = [q for q in questions["hd-epic"] if q.qid == "object_motion_object_movement_counting_94"]
    plan = proto.plan_frames(q94, tmp_path, 8)
    assert [(f.input, f.index) for f in plan.frames] == [(0, i) for i in linspace(14, 7)] + [(1, 12)]
    assert plan.stride == 2.0
