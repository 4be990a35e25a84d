"""The synthetic coloured-shapes benchmark: deterministic, in the questions schema, answers only in the
evidence frames, videos that decode to the drawn frames, and named errors for bad records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vqa_shap.builders import BUILDERS, get_builder
from vqa_shap.builders.source import SourceFileError
from vqa_shap.builders.shapes import (COLOURS, SHAPES, TEMPLATES, Shape, SyntheticBuilder, draw,
                                         evidence_frames, generate_source, sample_items)
from vqa_shap.errors import RecordError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return generate_source(tmp_path_factory.mktemp("synthetic"), 12, seed=3)


def test_registered():
    assert "synthetic" in BUILDERS.names()
    assert isinstance(get_builder("synthetic"), SyntheticBuilder)


def test_build_gives_questions_schema_rows_with_evidence(source):
    from datasets import Dataset

    from vqa_shap.schema.records import Question
    from vqa_shap.schema.arrow import question_features

    questions = get_builder("synthetic").build(source).configs["synthetic"]
    assert len(questions) == 12
    assert {q.task for q in questions} == set(TEMPLATES)
    dataset = Dataset.from_list([q.to_row() for q in questions], features=question_features())
    assert [Question.from_row(r) for r in dataset] == questions
    for q in questions:
        assert q.benchmark == "synthetic" and len(q.options) == 4 and len(set(q.options)) == 4
        assert 0 <= q.answer < 4
        evidence = evidence_frames(q)
        assert 1 <= len(evidence) <= 2
        assert (source / q.inputs[0].path).is_file()


def test_answer_is_only_in_the_evidence_frames():
    for item in sample_items(60, seed=11):
        q = item.question
        frames = q.extra["frames"]
        shown = {t: f for t, f in enumerate(frames) if f is not None}
        right = q.options[q.answer]
        for t in item.evidence_frames:
            assert right in (shown[t]["colour"], shown[t]["shape"])
        others = [f for t, f in shown.items() if t not in item.evidence_frames]
        target = shown[item.evidence_frames[0]]
        if q.task == "colour_of_shape":
            assert q.question == f"What colour was the {target['shape']}?"
            assert all(f["shape"] != target["shape"] for f in others)
        elif q.task == "shape_of_colour":
            assert q.question == f"Which shape was {target['colour']}?"
            assert all(f["colour"] != target["colour"] for f in others)
        else:
            assert others == []
        # the drawn pixels: the evidence frames have the target colour, empty frames are black
        rgb = np.array(COLOURS[target["colour"]], dtype=np.uint8)
        for t in item.evidence_frames:
            assert (item.frames[t] == rgb).all(axis=-1).sum() > 50
        for t in range(len(frames)):
            if frames[t] is None:
                assert not item.frames[t].any()


def test_deterministic_and_equal_to_the_in_memory_items(source, tmp_path):
    again = generate_source(tmp_path / "again", 12, seed=3)
    assert (again / "questions.json").read_text() == (source / "questions.json").read_text()
    other = generate_source(tmp_path / "other", 12, seed=4)
    assert (other / "questions.json").read_text() != (source / "questions.json").read_text()
    built = get_builder("synthetic").build(source).configs["synthetic"]
    items = list(sample_items(12, seed=3))
    assert [i.question for i in items] == built


def test_videos_decode_to_the_drawn_frames(source):
    from vqa_shap.video import read_frames, video_info

    item = next(sample_items(1, seed=3))
    path = source / item.question.inputs[0].path
    info = video_info(path)
    assert info.n_frames == 8 and info.fps == pytest.approx(1.0)
    decoded = read_frames(path, range(8))
    assert np.abs(decoded.astype(int) - item.frames.astype(int)).max() <= 8


def test_draw_shapes_differ():
    frames = draw([Shape(s, "red", 32, 32, 14) for s in SHAPES])
    masks = [(f > 0).any(-1) for f in frames]
    assert all(m.sum() > 200 for m in masks)
    assert len({m.tobytes() for m in masks}) == len(SHAPES)
    with pytest.raises(ValueError, match="unknown shape"):
        draw([Shape("star", "red", 32, 32, 10)])


def test_bad_records_name_the_field(source, tmp_path):
    records = json.loads((source / "questions.json").read_text())
    records[1]["evidence_frames"] = [99]
    records[2]["task"] = "nonsense"
    del records[3]["qid"]
    (tmp_path / "questions.json").write_text(json.dumps(records))
    with pytest.raises(RecordError, match="record '#3': field 'qid'"):
        get_builder("synthetic").build(tmp_path)
    result = get_builder("synthetic").build(tmp_path, on_error="skip")
    assert {(s.record, s.field) for s in result.skipped} == {
        (records[1]["qid"], "evidence_frames"), (records[2]["qid"], "task"), ("#3", "qid")}
    assert len(result.configs["synthetic"]) == 9
    (tmp_path / "questions.json").write_text(json.dumps(records[:3]))
    with pytest.raises(RecordError) as err:
        get_builder("synthetic").build(tmp_path)
    assert f"record '{records[1]['qid']}': field 'evidence_frames'" in str(err.value)
    assert "outside the video's 8 frames" in str(err.value)


def test_missing_source_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceFileError, match="questions.json: file not found"):
        get_builder("synthetic").build(tmp_path)


def test_bad_generation_arguments():
    with pytest.raises(ValueError, match="unknown template"):
        next(sample_items(1, templates=("colour_of_shape", "what")))
    with pytest.raises(ValueError, match="even frame size"):
        next(sample_items(1, size=33))
