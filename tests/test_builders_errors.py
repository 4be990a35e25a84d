"""Bad input: every error names the file, the record and the field; ``on_error="skip"`` keeps the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vqa_shap.builders import get_builder
from vqa_shap.builders.source import SourceFileError
from vqa_shap.errors import RecordError


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=1))


def _replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))


HD = "gaze_interaction_anticipation"
HD_QID = "gaze_interaction_anticipation_34"
EGO_QID = "cee8ee9e-723a-45f8-9a09-889790f60f7e"
LV_FILE = "data/video_info.meta.jsonl"


def _lv_edit(uid: str, field: str, value):
    def edit(root: Path):
        path = root / LV_FILE
        lines = []
        for line in path.read_text().splitlines():
            video = json.loads(line)
            for qa in video["qa"]:
                if str(qa["uid"]) == uid:
                    qa[field] = value
            lines.append(json.dumps(video))
        path.write_text("\n".join(lines) + "\n")
    return edit


def _hd_edit(edit_record):
    def edit(root: Path):
        _edit_json(root / f"{HD}.json", lambda d: edit_record(d[HD_QID]))
    return edit


def _ego_edit(edit_record):
    def edit(root: Path):
        _edit_json(root / "questions.json",
                   lambda d: edit_record(next(r for r in d if r["q_uid"] == EGO_QID)))
    return edit


def _duplicate_hd(root: Path) -> None:
    # a *different* record under an existing qid, in a file read earlier (sorted order)
    other = json.loads((root / f"{HD}.json").read_text())[HD_QID]
    _edit_json(root / "fine_grained_why_recognition.json",
               lambda d: d.__setitem__(HD_QID, {**other, "correct_idx": 0}))


# (benchmark, corruption, file name, record id, field, questions still built)
CASES = {
    "missing field": ("hd-epic", _hd_edit(lambda r: r.pop("question")), f"{HD}.json", HD_QID, "question", 11),
    "answer out of range": ("hd-epic", _hd_edit(lambda r: r.__setitem__("correct_idx", 5)), f"{HD}.json", HD_QID, "correct_idx", 11),
    "answer wrong type": ("hd-epic", _hd_edit(lambda r: r.__setitem__("correct_idx", "3")), f"{HD}.json", HD_QID, "correct_idx", 11),
    "no option": ("hd-epic", _hd_edit(lambda r: r.__setitem__("choices", [])), f"{HD}.json", HD_QID, "choices[*]", 11),
    "empty option": ("hd-epic", _hd_edit(lambda r: r["choices"].__setitem__(2, "  ")), f"{HD}.json", HD_QID, "choices[2]", 11),
    "bad time": ("hd-epic", _hd_edit(lambda r: r["inputs"]["video 1"].__setitem__("start_time", "13:01")),
                 f"{HD}.json", HD_QID, "inputs.video 1.start_time", 11),
    "duplicate qid": ("hd-epic", _duplicate_hd, f"{HD}.json", HD_QID, "q_uid", 12),
    "non-utf8 hd-epic": ("hd-epic", lambda root: _replace_bytes(root / f"{HD}.json", b"The garlic.", b"The gar\xfflic."),
                         f"{HD}.json", HD_QID, "choices[3]", 11),
    "egoschema missing question": ("egoschema", _ego_edit(lambda r: r.pop("question")), "questions.json", EGO_QID, "question", 11),
    "egoschema answer out of range": ("egoschema", lambda root: _edit_json(root / "subset_answers.json", lambda d: d.__setitem__(EGO_QID, 5)),
                                      "questions.json", EGO_QID, "answer", 11),
    "egoschema non-utf8": ("egoschema", lambda root: _replace_bytes(root / "questions.json", b"progressively mold the clay", b"progressively m\xe9ld the clay"),
                           "questions.json", "111b7189-cc45-438c-8144-ded1eed0f6c2", "option 2", 11),
    "lvbench unparsable option lines": ("lvbench", _lv_edit("132", "question", "Where do they sit?\n(A) A river\n(C) A park bench"),
                                        "video_info.meta.jsonl", "event_understanding_entity_recognition_132", "question", 11),
    "lvbench options missing": ("lvbench", _lv_edit("132", "question", "Where do they sit?"),
                                "video_info.meta.jsonl", "event_understanding_entity_recognition_132", "question", 11),
    "lvbench answer letter": ("lvbench", _lv_edit("132", "answer", "F"),
                              "video_info.meta.jsonl", "event_understanding_entity_recognition_132", "answer", 11),
    "lvbench non-utf8": ("lvbench", lambda root: _replace_bytes(root / LV_FILE, b"(B) A fountain", b"(B) A fo\x80ntain"),
                         "video_info.meta.jsonl", "event_understanding_entity_recognition_132", "question", 11),
    "lvbench broken line": ("lvbench", lambda root: _replace_bytes(root / LV_FILE, b'{"key": "q01CUy_gwdU"', b'{"key" "q01CUy_gwdU"'),
                            "video_info.meta.jsonl", "line 2", "(json)", 11),
    "mvbench answer not a candidate": ("mvbench", lambda root: _edit_json(root / "json/action_count.json", lambda d: d[0].__setitem__("answer", "99")),
                                       "action_count.json", "action_count_0", "answer", 11),
    "mvbench missing candidates": ("mvbench", lambda root: _edit_json(root / "json/action_count.json", lambda d: d[0].pop("candidates")),
                                   "action_count.json", "action_count_0", "candidates", 11),
}


@pytest.fixture
def broken(pollard_dir, tmp_path, request):
    bench, corrupt, file_name, record, field, n_good = CASES[request.param]
    root = tmp_path / bench
    shutil.copytree(pollard_dir / "raw" / bench, root)
    corrupt(root)
    return bench, root, file_name, record, field, n_good


@pytest.mark.parametrize("broken", list(CASES), indirect=True)
def test_bad_record_is_named_and_skippable(broken, tmp_path):
    bench, root, file_name, record, field, n_good = broken
    with pytest.raises(RecordError) as info:
        get_builder(bench).build(root)
    error = info.value
    message = str(error)
    assert file_name in message and repr(record) in message and Path(error.file).name == file_name
    assert error.record == record
    assert error.field == field and repr(field) in message

    result = get_builder(bench).build(root, on_error="skip")
    assert result.n_questions == n_good
    built = {q.qid for qs in result.configs.values() for q in qs}
    assert (record in built) == (field == "q_uid")  # a duplicate's first occurrence stays
    (skip,) = result.skipped
    assert (Path(skip.file).name, skip.record, skip.field) == (file_name, record, error.field)
    assert skip.reason == error.reason
    report = tmp_path / "report" / "skipped.jsonl"
    result.write_skip_report(report)
    (line,) = report.read_text().splitlines()
    assert json.loads(line) == {"file": skip.file, "record": record, "field": error.field,
                                "reason": error.reason, "config": skip.config, "kind": "invalid"}


def test_non_utf8_names_byte_and_field(pollard_dir, tmp_path):
    root = tmp_path / "hd"
    shutil.copytree(pollard_dir / "raw" / "hd-epic", root)
    _replace_bytes(root / f"{HD}.json", b"The garlic.", b"The gar\xfflic.")
    with pytest.raises(RecordError, match=r"not valid UTF-8: undecodable byte 0xff"):
        get_builder("hd-epic").build(root)


def test_json_syntax_error_names_file_and_line_under_both_policies(pollard_dir, tmp_path):
    root = tmp_path / "hd"
    shutil.copytree(pollard_dir / "raw" / "hd-epic", root)
    path = root / f"{HD}.json"
    path.write_text(path.read_text().replace('"choices": [', '"choices" [', 1))
    for policy in ("raise", "skip"):
        with pytest.raises(SourceFileError, match=rf"{HD}\.json: invalid JSON at line \d+ column \d+"):
            get_builder("hd-epic").build(root, on_error=policy)


def test_wrong_top_level_and_missing_files_are_named(pollard_dir, tmp_path):
    root = tmp_path / "ego"
    shutil.copytree(pollard_dir / "raw" / "egoschema", root)
    (root / "subset_answers.json").write_text("[1, 2]")
    with pytest.raises(SourceFileError, match=r"subset_answers\.json: expected a JSON object"):
        get_builder("egoschema").build(root)
    (root / "subset_answers.json").unlink()
    with pytest.raises(SourceFileError, match=r"subset_answers\.json: file not found"):
        get_builder("egoschema").build(root)
    with pytest.raises(SourceFileError, match="not a folder"):
        get_builder("lvbench").build(tmp_path / "nowhere")
    with pytest.raises(Exception, match="on_error"):
        get_builder("lvbench").build(root, on_error="ignore")


def test_answer_without_question_is_reported(pollard_dir, tmp_path):
    root = tmp_path / "ego"
    shutil.copytree(pollard_dir / "raw" / "egoschema", root)
    _edit_json(root / "subset_answers.json", lambda d: d.__setitem__("not-a-question", 1))
    with pytest.raises(RecordError, match=r"subset_answers\.json: record 'not-a-question': field 'q_uid'"):
        get_builder("egoschema").build(root)
    result = get_builder("egoschema").build(root, on_error="skip")
    assert result.n_questions == 12 and [s.record for s in result.skipped] == ["not-a-question"]


def test_pollard2025_dump_and_csv_must_agree(pollard_dir, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(pollard_dir / "subsets", root / "subsets")
    shutil.copytree(pollard_dir / "answers", root / "answers")
    csv_path = root / "subsets" / "mvbench.csv"
    csv_path.write_text(csv_path.read_text() + "action_count_999\n")
    with pytest.raises(RecordError, match=r"mvbench\.json: record 'action_count_999': field 'q_uid': listed in mvbench\.csv"):
        get_builder("pollard2025").build(root)
    result = get_builder("pollard2025").build(root, on_error="skip")
    assert len(result.configs["mvbench"]) == 12 and len(result.configs) == 19
    assert [(s.record, s.config) for s in result.skipped] == [("action_count_999", "")]
