"""``vqa-shap features`` on a tiny Hub-style questions folder, with and without videos."""

from __future__ import annotations

import json

import pytest

from vqa_shap.cli import main
from vqa_shap.protocol import get_protocol
from vqa_shap.schema.records import Question, VisualInput

QUESTIONS = [
    Question("ego_1", "egoschema", "t", "What does c do with the cup.", ("Washes it", "Drinks from it"), 1,
             inputs=(VisualInput("video", "ego_1.mp4"),)),
    Question("ego_2", "egoschema", "t", "Where is the knife?", ("On the table", "In a drawer"), 0,
             inputs=(VisualInput("video", "ego_2.mp4"),)),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from vqa_shap.hub.folder import write_questions

    path = tmp_path_factory.mktemp("questions")
    write_questions(path, "egoschema", QUESTIONS)
    return path


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("videos")
    synthesize_inputs(QUESTIONS[:1], root, n_frames=12, size=(32, 32), fps=2.0)  # ego_2's video is missing
    return root


def test_features_without_videos_lists_text_only(folder, tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["features", str(folder), "--config", "egoschema", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "pollard2025" and result["config"] == "egoschema"
    proto = get_protocol()
    for entry, q in zip(result["questions"], QUESTIONS):
        assert entry["qid"] == q.qid and entry["n_frames"] == 0
        assert entry["note"] == "no --video-root: text features only"
        assert entry["features"] == [f.to_row() for f in proto.text_features(q)]
    assert result["questions"][0]["features"][:3] == [
        {"name": "What", "modality": "question", "option": -1, "input": -1, "time": None},
        {"name": "does", "modality": "question", "option": -1, "input": -1, "time": None},
        {"name": "c", "modality": "question", "option": -1, "input": -1, "time": None}]
    assert "2 questions, 0 with frames" in capsys.readouterr().out


def test_features_with_videos_lists_frames_first(folder, video_root, tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["features", str(folder), "--config", "egoschema", "--video-root", str(video_root),
                 "--frames", "4", "--loader", "llava_onevision", "--json", str(out)]) == 0
    first, second = json.loads(out.read_text())["questions"]
    assert first["n_frames"] == 4 and first["note"] is None
    # 12 frames at 2 fps, linspace(0, 11, 4) -> 0, 3, 7, 11 -> times / 2
    assert first["features"][:4] == [
        {"name": f"frame_{k}", "modality": "video", "option": -1, "input": 0, "time": t}
        for k, t in enumerate([0.0, 1.5, 3.5, 5.5])]
    assert first["features"][4:] == [f.to_row() for f in get_protocol().text_features(QUESTIONS[0])]
    # the missing video is reported, the question still gets its text features
    assert second["n_frames"] == 0 and "ego_2.mp4" in second["note"] and second["features"]
    assert "ego_2: videos not found under" in capsys.readouterr().out


def test_features_temporal_unit_groups_frames(folder, video_root, tmp_path):
    out = tmp_path / "f.json"
    assert main(["features", str(folder), "--config", "egoschema", "--video-root", str(video_root),
                 "--frames", "5", "--temporal-unit", "2", "--json", str(out)]) == 0
    names = [f["name"] for f in json.loads(out.read_text())["questions"][0]["features"][:4]]
    assert names == ["frame_0-1", "frame_2-3", "frame_4", "What"]


def test_features_records_a_corrupt_video_and_fails(folder, tmp_path, capsys):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "ego_1.mp4").write_bytes(b"garbage" * 20)
    out = tmp_path / "f.json"
    assert main(["features", str(folder), "--config", "egoschema", "--video-root", str(root),
                 "--json", str(out)]) == 1
    first = json.loads(out.read_text())["questions"][0]
    assert "ego_1.mp4" in first["error"] and first["features"]  # the row is kept, with the reason
    assert "ego_1.mp4" in capsys.readouterr().out


def test_features_bad_arguments_are_one_line_errors(folder, tmp_path, capsys):
    assert main(["features", str(folder), "--config", "nope", "--json", str(tmp_path / "x.json")]) == 2
    assert "no config 'nope'" in capsys.readouterr().err
    assert main(["features", str(folder), "--config", "egoschema", "--video-root", str(tmp_path / "none"),
                 "--json", str(tmp_path / "x.json")]) == 2  # checked at parse time
    assert "argument --video-root: folder" in capsys.readouterr().err
    assert main(["features", str(folder), "--config", "egoschema", "--protocol", "other",
                 "--json", str(tmp_path / "x.json")]) == 2
    assert "unknown protocol 'other'; valid protocols: pollard2025" in capsys.readouterr().err


def test_features_on_built_hd_epic_questions(pollard_dir, tmp_path):
    """The paper's HD-EPIC fixture questions (multi-input, windows, images) through the command."""
    from vqa_shap.builders import get_builder
    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = get_builder("pollard2025").build(pollard_dir).configs["hd-epic"][:4]
    write_questions(tmp_path / "q", "hd-epic", questions)
    synthesize_inputs(questions, tmp_path / "v", n_frames=8, size=(32, 32), fps=1.0)
    out = tmp_path / "f.json"
    assert main(["features", str(tmp_path / "q"), "--config", "hd-epic", "--video-root", str(tmp_path / "v"),
                 "--frames", "6", "--json", str(out)]) == 0
    entries = json.loads(out.read_text())["questions"]
    proto = get_protocol()
    for entry, q in zip(entries, questions):
        plan = proto.plan_frames(q, tmp_path / "v", 6)
        assert entry["n_frames"] == len(plan) <= 6 and entry["stride"] == plan.stride > 0
        assert entry["features"] == [f.to_row() for f in proto.features(q, plan)]
    # the counting question has a video and an image: frames of both inputs are players
    assert {f["input"] for f in entries[0]["features"] if f["modality"] == "video"} == {0, 1}
