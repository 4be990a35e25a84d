"""EgoSchema and LVBench official files as their users get them: EgoSchema's questions without a public
answer (built with an unknown answer, skipped and counted where the ground truth is needed), a
questions file and an answers file that do not meet, LVBench's two clone layouts and its
video2dataset downloads, options a source repeats, and ``augment``'s output.

EgoSchema excerpts (tests/fixtures/official/egoschema, byte for byte; README there): the repository's
20-question ``questions.json`` of 2023-08-09 and its ``subset_answers.json`` (500 answers). The
Kaggle-release records and the LVBench lines come from ../shared/fixtures (skipped when absent).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.hub import folder as hub
from vqa_shap.analysis.metrics import subset_metrics
from vqa_shap.analysis.paper_csv import attribution_to_csv
from vqa_shap.builders import get_builder
from vqa_shap.builders.base import REPEATED_OPTIONS
from vqa_shap.builders.lvbench import video2dataset_paths
from vqa_shap.builders.source import SourceFileError
from vqa_shap.builders.variants import make_variant
from vqa_shap.cli import main
from vqa_shap.schema.records import Attribution, Feature, Question, UnknownAnswerError

EGOSCHEMA = Path(__file__).parent / "fixtures" / "official" / "egoschema"
EARLY_QUESTIONS = EGOSCHEMA / "questions_20230809.json"
ANSWERS = EGOSCHEMA / "subset_answers.json"
REPEATING = "0d173aa3-9a94-4ba4-84bc-949d3254a63d"  # a Kaggle-release record whose options 2 and 4 are equal


@pytest.fixture()
def full_set(pollard_dir, tmp_path) -> Path:
    """The release's situation in small: questions with and without a public answer (the 20 early
    records, none answered, and the 12 Kaggle-release records of the shared fixtures), with the real
    answers of those 12 (taken from the 500)."""
    early = json.loads(EARLY_QUESTIONS.read_text(encoding="utf-8"))
    kaggle = json.loads((pollard_dir / "raw" / "egoschema" / "questions.json").read_text(encoding="utf-8"))
    answers = json.loads(ANSWERS.read_text(encoding="utf-8"))
    folder = tmp_path / "egoschema"
    folder.mkdir()
    (folder / "questions.json").write_text(json.dumps(early + kaggle), encoding="utf-8")
    (folder / "subset_answers.json").write_text(json.dumps({r["q_uid"]: answers[r["q_uid"]] for r in kaggle}))
    return folder


def test_an_answers_file_that_does_not_meet_the_questions_is_one_error(tmp_path, capsys):
    folder = tmp_path / "early"
    folder.mkdir()
    shutil.copy(EARLY_QUESTIONS, folder / "questions.json")
    shutil.copy(ANSWERS, folder / "subset_answers.json")
    with pytest.raises(SourceFileError, match=r"do not meet: none of the 500 answered q_uids is among the 20 questions"):
        get_builder("egoschema").build(folder)
    assert main(["build", "egoschema", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "subset_answers.json" in err and "questions.json" in err


def test_egoschema_questions_without_an_answer_are_built_and_counted(full_set, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(full_set), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "built 32 questions" in printed and "12 with answers, 20 without" in printed
    assert f"egoschema: {REPEATING}: options 2 = 4" in printed and "1 questions repeat an option (0 of them" in printed
    questions = hub.load_questions(out, "egoschema")
    answers = json.loads(ANSWERS.read_text())
    early = {r["q_uid"] for r in json.loads(EARLY_QUESTIONS.read_text())}
    assert [q.answer for q in questions] == [answers.get(q.qid) for q in questions]  # null in Arrow
    assert {q.qid for q in questions if q.answer is None} == early
    by_qid = {q.qid: q for q in questions}
    repeating = by_qid[REPEATING]
    assert repeating.extra[REPEATED_OPTIONS] == [[2, 4]] and repeating.options[2] == repeating.options[4]
    assert all(REPEATED_OPTIONS not in q.extra for q in questions if q.qid != REPEATING)
    assert Question.from_row(repeating.to_row()) == repeating


def test_variants_skip_questions_without_an_answer_and_say_how_many(full_set, tmp_path, capsys, caplog):
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(full_set), "--out", str(out)]) == 0
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["augment", str(out), "--config", "egoschema", "--variant", "hard_5"]) == 0
    printed = capsys.readouterr()
    assert "added egoschema_hard_5: 12 questions" in printed.out
    assert "Generating" not in printed.out + printed.err  # datasets' progress bars are not the command's output
    assert "20 question(s) without a known answer skipped: the hard_5 variant keeps the correct option" in caplog.text
    originals = {q.qid: q for q in hub.load_questions(out, "egoschema")}
    for q in hub.load_questions(out, "egoschema_hard_5"):
        assert q.options[q.answer] == originals[q.qid].options[originals[q.qid].answer]
    unanswered = [q for q in originals.values() if q.answer is None]
    assert make_variant(unanswered, "easy") == []


def _attribution(qid: str, answer, shapley) -> Attribution:
    features = (Feature("frame_0", "video", input=0, time=0.0), Feature("what", "question"),
                Feature("yes", "answer", option=0), Feature("no", "answer", option=1))
    return Attribution(qid, "egoschema", "egoschema", "original", "m", "demo", "pollard2025", features,
                       shapley, answer=answer, prediction=0)


def test_consumers_that_need_the_ground_truth_skip_or_refuse_unknown_answers(caplog):
    rng = np.random.default_rng(0)
    known = [_attribution(f"k{i}", i % 2, rng.normal(size=(4, 2))) for i in range(3)]
    unknown = [_attribution(f"u{i}", None, rng.normal(size=(4, 2))) for i in range(2)]
    assert Attribution.from_row(unknown[0].to_row()) == unknown[0] and unknown[0].to_row()["answer"] is None
    with caplog.at_level(logging.WARNING):
        mixed = subset_metrics(known + unknown, bootstrap=0)
    alone = subset_metrics(known, bootstrap=0)
    for m, a in zip(mixed, alone):
        assert m.n_questions == 3 and m.n_unknown_answer == 2 and a.n_unknown_answer == 0
        assert m.values == a.values  # the unknown ones change nothing
    assert "2 question(s) without a known answer skipped: metrics need the ground truth" in caplog.text
    with pytest.raises(UnknownAnswerError, match=r"question 'u0' has no known answer: the paper's CSV"):
        attribution_to_csv(unknown[0])
    assert list(attribution_to_csv(known[1]).columns) == ["element", "A", "B: Ground Truth"]


# ---------------------------------------------------------------------------------------------
# LVBench
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def lvbench_lines(pollard_dir) -> bytes:
    return (pollard_dir / "raw" / "lvbench" / "data" / "video_info.meta.jsonl").read_bytes()


def test_lvbench_builds_from_a_github_and_a_hugging_face_clone(lvbench_lines, tmp_path):
    github, hf = tmp_path / "github", tmp_path / "hf"
    (github / "data").mkdir(parents=True)
    (github / "data" / "video_info.meta.jsonl").write_bytes(lvbench_lines)
    hf.mkdir()
    (hf / "video_info.meta.jsonl").write_bytes(lvbench_lines)
    from_github = get_builder("lvbench").build(github).configs["lvbench"]
    from_hf = get_builder("lvbench").build(hf).configs["lvbench"]
    assert len(from_github) == 12 and from_hf == from_github
    both = tmp_path / "both"
    shutil.copytree(github, both)
    (both / "video_info.meta.jsonl").write_bytes(lvbench_lines)  # the same file twice is fine
    assert get_builder("lvbench").build(both).configs["lvbench"] == from_github
    (both / "video_info.meta.jsonl").write_bytes(lvbench_lines.splitlines(keepends=True)[0])
    with pytest.raises(SourceFileError, match="differ: keep one LVBench annotation file"):
        get_builder("lvbench").build(both)
    with pytest.raises(SourceFileError, match="no video_info.meta.jsonl in it or in its data/ folder"):
        get_builder("lvbench").build(tmp_path / "github" / "data" / ".." / "..")


def test_lvbench_video2dataset_downloads_are_named_by_their_files(lvbench_lines, tmp_path, caplog):
    """``scripts/download.sh`` (video2dataset, output format ``files``) writes ``videos/00000/000000NN.mp4``
    and a ``.json`` with the URL; questions of a downloaded video name that file."""
    source = tmp_path / "LVBench"
    (source / "data").mkdir(parents=True)
    (source / "data" / "video_info.meta.jsonl").write_bytes(lvbench_lines)
    keys = [json.loads(line)["key"] for line in lvbench_lines.splitlines()]
    shard = source / "scripts" / "videos" / "00000"
    shard.mkdir(parents=True)
    for n, key in enumerate(keys[:3]):  # the first three downloaded; the third one's download failed
        meta = {"url": f"https://www.youtube.com/watch?v={key}", "key": f"00000{n:03d}", "status": "success"}
        (shard / f"00000{n:03d}.json").write_text(json.dumps(meta, indent=4))
        if n < 2:
            (shard / f"00000{n:03d}.mp4").write_bytes(b"video")
    assert video2dataset_paths(source / "scripts" / "videos") == {keys[0]: "00000/00000000.mp4",
                                                                   keys[1]: "00000/00000001.mp4"}
    out = tmp_path / "ds"
    with caplog.at_level(logging.INFO):
        assert main(["build", "lvbench", str(source), "--out", str(out)]) == 0
    assert f"2 of the {len(set(keys))} videos were downloaded there by video2dataset" in caplog.text
    paths = {q.extra["key"]: q.inputs[0].path for q in hub.load_questions(out, "lvbench")}
    assert paths == {key: {keys[0]: "00000/00000000.mp4", keys[1]: "00000/00000001.mp4"}.get(key, f"{key}.mp4")
                     for key in keys}
    (shard / "00000000.json").write_text("{not json")
    with pytest.raises(SourceFileError, match="00000000.json: not a video2dataset sample record"):
        get_builder("lvbench").build(source)


def test_lvbench_repeated_options_are_flagged_and_kept(lvbench_lines, tmp_path, capsys):
    """A copy of the correct option among the options (LVBench has such questions) is kept as the
    source has it, flagged in the record and the build output."""
    first = json.loads(lvbench_lines.splitlines()[0])
    qa = first["qa"][0]  # answer B: "(B) Rondel Sorrillo"
    lines = qa["question"].split("\n")
    correct = lines[1 + ord(qa["answer"]) - ord("A")][4:]
    qa["question"] = "\n".join(lines[:-1] + [f"({chr(ord('A') + len(lines) - 2)}) {correct}"])
    source = tmp_path / "lv"
    (source / "data").mkdir(parents=True)
    (source / "data" / "video_info.meta.jsonl").write_text(json.dumps(first) + "\n")
    out = tmp_path / "ds"
    assert main(["build", "lvbench", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 questions repeat an option (1 of them the correct one)" in printed
    assert "lvbench: key_information_retrieval_4203: options 1 = 3 (the correct one)" in printed
    built = {q.qid: q for q in hub.load_questions(out, "lvbench")}
    question = built["key_information_retrieval_4203"]
    assert question.options[1] == question.options[3] == correct and question.answer == 1
    assert question.extra[REPEATED_OPTIONS] == [[1, 3]]
    # easy replaces every distractor slot (the copy included) with another question's distractors;
    # hard_N keeps the question's own options (the copy stays) and adds none equal to them
    assert len(built) == 2  # the video's other question donates the distractors
    easy = {q.qid: q for q in make_variant(list(built.values()), "easy")}[question.qid]
    assert easy.options[1] == correct and easy.options.count(correct) == 1
    hard = {q.qid: q for q in make_variant(list(built.values()), "hard_2")}[question.qid]
    assert hard.options.count(correct) == 2 and hard.n_options == 6 and hard.options[hard.answer] == correct


@pytest.mark.slow
def test_explain_metrics_and_view_with_an_unknown_answer(tmp_path, capsys, caplog):
    """A question without a known answer is explained (φ over every option), counted out of the
    metrics with a message, and listed by the viewer with status ``unknown``."""
    import torch

    from vqa_shap.loaders.demo_models import DEMO_MODEL
    from vqa_shap.schema.records import VisualInput
    from vqa_shap.synthetic_inputs import shot_frames, write_video

    torch.set_num_threads(1)
    frames, _ = shot_frames([4, 4], size=(64, 64), seed=3)
    write_video(tmp_path / "videos" / "v.mp4", frames, 2.0)
    questions = [Question(qid, "egoschema", "egoschema", "What does c do?", ("c cooks", "c reads", "c sleeps"),
                          answer, inputs=(VisualInput("video", "v.mp4"),)) for qid, answer in (("known", 1), ("unknown", None))]
    hub.write_questions(tmp_path / "questions", "egoschema", questions)
    out = tmp_path / "out"
    assert main(["explain", str(tmp_path / "questions"), "--config", "egoschema", "--model", DEMO_MODEL,
                 "--video-root", str(tmp_path / "videos"), "--out", str(out), "--frames", "8", "--budget", "64",
                 "--no-progress", "--device", "cpu", "--dtype", "float32"]) == 0
    rows = {a.qid: a for a in (Attribution.from_row(r) for r in hub.load_config(out, "demo__egoschema"))}
    assert rows["unknown"].error is None and rows["unknown"].answer is None and rows["unknown"].shapley.shape[1] == 3
    assert rows["known"].answer == 1
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        assert main(["metrics", str(out), "--bootstrap", "10", "--json", str(tmp_path / "m.json")]) == 0
    assert "1 question(s) without a known answer skipped: metrics need the ground truth" in caplog.text
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {m["n_questions"] for m in metrics} == {1} and {m["n_unknown_answer"] for m in metrics} == {1}
    assert main(["view", str(out), "--out", str(tmp_path / "site"), "--bootstrap", "10", "--no-progress"]) == 0
    data = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.js") if "assets" not in p.parts)
    assert "unknown" in data
