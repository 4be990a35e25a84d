"""The official HD-EPIC and MVBench annotation files (byte-for-byte excerpts in tests/fixtures/official):
default builds, the single-option policy, ``easy`` without added duplicates, ``hard_5`` pools that
serve every task, and the skip report."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.hub import folder as hub
from vqa_shap.builders import get_builder
from vqa_shap.cli import main
from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import OptionOrigin, Question
from vqa_shap.builders.variant_pools import UNKNOWN_ORIGIN, normalise
from vqa_shap.builders.variants import make_variant

OFFICIAL = Path(__file__).parent / "fixtures" / "official"
HD_EPIC = OFFICIAL / "hd-epic" / "vqa-benchmark"
MVBENCH = OFFICIAL / "mvbench"
POSITIONS = json.loads((MVBENCH / "positions.json").read_text())
SINGLE_CANDIDATE = [81, 98, 111, 137, 162]  # official positions in counterfactual_inference.json


def _official_mvbench_qid(excerpt_qid: str) -> str:
    task, position = excerpt_qid.rsplit("_", 1)
    return f"{task}_{POSITIONS[task][int(position)]}"


@pytest.fixture(scope="module")
def built() -> dict[str, list[Question]]:
    return {"hd-epic": get_builder("hd-epic").build(HD_EPIC).configs["hd-epic"],
            "mvbench": get_builder("mvbench").build(MVBENCH).configs["mvbench"]}


def _added_duplicates(variant: Question, original: Question) -> list[str]:
    """Normalised texts the variant holds more than once and more often than the original did."""
    now = Counter(normalise(o) for o in variant.options)
    before = Counter(normalise(o) for o in original.options)
    return [text for text, n in now.items() if n > 1 and n > before[text]]


def _check_variant(variants: list[Question], originals: list[Question]) -> None:
    by_qid = {q.qid: q for q in originals}
    for q in variants:
        original = by_qid[q.qid]
        assert not _added_duplicates(q, original), (q.qid, q.options)
        assert q.options[q.answer] == original.options[original.answer]  # every answer text kept
        assert q.option_origin[q.answer] == OptionOrigin(q.qid, original.answer)
        for text, origin in zip(q.options, q.option_origin):  # every origin names where its text came from
            if origin != UNKNOWN_ORIGIN:
                assert by_qid[origin.qid].options[origin.index] == text


def test_default_builds_of_the_official_files(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "hd-epic", str(HD_EPIC), "--out", str(out)]) == 0
    assert "built 36 questions" in capsys.readouterr().out
    assert not list(out.glob("skipped_*"))
    # MVBench: the five single-candidate records are skipped by default, with a report and one line
    assert main(["build", "mvbench", str(MVBENCH), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    report = out / "skipped_mvbench.json"
    assert f"skipped 5 records (5 with a single option: not multiple-choice questions); report: {report}" in printed.out
    assert printed.err == ""  # no warning per excluded record: the summary line says it
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [_official_mvbench_qid(r["record"]) for r in lines] == [
        f"counterfactual_inference_{p}" for p in SINGLE_CANDIDATE]
    assert {(r["kind"], r["field"]) for r in lines} == {("excluded", "candidates[*]")}
    assert len(hub.load_questions(out, "mvbench")) == sum(map(len, POSITIONS.values())) - 5
    # on_error="raise" (the default) still stops at an invalid record
    with pytest.raises(VqaShapError, match="not one of the candidates"):
        source = tmp_path / "broken"
        shutil.copytree(MVBENCH, source)
        records = json.loads((source / "json" / "action_count.json").read_text())
        records[1]["answer"] = "99"
        (source / "json" / "action_count.json").write_text(json.dumps(records))
        get_builder("mvbench").build(source)


def test_hd_epic_list_choices_metadata_and_stat(built):
    raw = {name: json.loads((HD_EPIC / f"{name}.json").read_text())
           for name in ("ingredient_ingredients_order", "nutrition_nutrition_change", "fine_grained_how_recognition")}
    questions = {q.qid: q for q in built["hd-epic"]}
    order = questions["ingredient_ingredients_order_0"]
    assert order.options == tuple(", ".join(c) for c in raw["ingredient_ingredients_order"]["ingredient_ingredients_order_0"]["choices"])
    change = questions["nutrition_nutrition_change_0"]
    assert change.extra["metadata"] == raw["nutrition_nutrition_change"]["nutrition_nutrition_change_0"]["metadata"]
    how = questions["fine_grained_how_recognition_392"]
    assert how.extra["stat"] == raw["fine_grained_how_recognition"]["fine_grained_how_recognition_392"]["stat"]
    assert "stat" not in questions["fine_grained_how_recognition_0"].extra


@pytest.mark.parametrize("benchmark", ["hd-epic", "mvbench"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_easy_adds_no_duplicate(built, benchmark, seed):
    originals = built[benchmark]
    easy = make_variant(originals, "easy", seed=seed)
    _check_variant(easy, originals)
    for q, original in zip(easy, originals):
        assert q.n_options == original.n_options
    if benchmark == "hd-epic" and seed == 0:  # the example: its own '2' was kept beside the donor's '2'
        counting = next(q for q in easy if q.qid == "3d_perception_fixture_interaction_counting_13")
        assert len({normalise(o) for o in counting.options}) == 5


def _donors(n: int, seed: int) -> list[int]:
    rng, donors = np.random.default_rng(seed), list(range(n))
    while True:
        rng.shuffle(donors)
        if all(d != i for i, d in enumerate(donors)):
            return donors


def _q(qid: str, options: list[str], answer: int = 0) -> Question:
    return Question(qid=qid, benchmark="mvbench", task="t", question="?", options=tuple(options), answer=answer,
                    inputs=())


def test_easy_takes_the_next_donor_when_the_donor_runs_short():
    qs = [_q("a", ["x", "y", "z"]), _q("b", ["w", "X ", "x"]), _q("c", ["p", "q", "r"])]
    seed = next(s for s in range(50) if _donors(3, s)[0] == 1)  # a's donor is b, whose distractors repeat a's answer
    a = make_variant(qs, "easy", seed=seed)[0]
    assert a.options == ("x", "q", "r") and [o.qid for o in a.option_origin] == ["a", "c", "c"]
    paper = make_variant(qs, "easy", seed=seed, dedupe=False)[0]
    assert paper.options == ("x", "X ", "x")  # the paper's sampling keeps the duplicates


@pytest.mark.parametrize("benchmark", ["hd-epic", "mvbench"])
def test_hard_5_serves_every_task(built, benchmark):
    originals = built[benchmark]
    hard = make_variant(originals, "hard_5", seed=0)
    _check_variant(hard, originals)
    assert all(q.n_options == o.n_options + 5 for q, o in zip(hard, originals))
    if benchmark == "hd-epic":
        return
    pools = {q.task: q.extra.get("distractor_pools") for q in hard}
    # tasks with a small answer vocabulary widen their pool; others never do
    assert pools["object_existence"] == {"benchmark": 5}  # yes / no / not sure: nothing else is yes/no
    assert set(pools["egocentric_navigation"]) == {"answer_type"}  # directions of moving_direction
    assert pools["episodic_reasoning"] is None
    for q in hard:
        if q.task == "moving_count":  # numbers only: other counting tasks, then generated integers
            assert all(o.isdigit() for o in q.options)
        if q.task == "egocentric_navigation":
            added = {o.qid.rsplit("_", 1)[0] for o in q.option_origin} - {q.task}
            assert added == {"moving_direction"}


def test_hard_lists_every_unservable_question_by_task(built):
    originals = [q for q in built["mvbench"] if q.task in ("object_existence", "moving_count", "action_localization")]
    with pytest.raises(VqaShapError) as info:
        make_variant(originals, "hard_40")
    message = str(info.value)
    assert message.startswith("hard_40: 8 question(s) cannot get 40 distinct distractors")
    assert "task 'action_localization': 'action_localization_0' (" in message
    assert "task 'object_existence': 'object_existence_0' (" in message
    assert all(q.qid in message for q in originals if q.task != "moving_count")
    assert "moving_count" not in message  # numbers can always be generated


def test_augment_official_files_through_the_cli(tmp_path, capsys):
    out = tmp_path / "ds"
    for bench, source in (("hd-epic", HD_EPIC), ("mvbench", MVBENCH)):
        assert main(["build", bench, str(source), "--out", str(out)]) == 0
        for variant in ("easy", "hard_5"):
            assert main(["augment", str(out), "--config", bench, "--variant", variant]) == 0
            _check_variant(hub.load_questions(out, f"{bench}_{variant}"), hub.load_questions(out, bench))
    assert "added mvbench_hard_5: 34 questions" in capsys.readouterr().out


def test_skip_report_is_written_when_nothing_builds(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    records = json.loads((HD_EPIC / "gaze_interaction_anticipation.json").read_text())
    for record in records.values():
        del record["question"]
    (source / "gaze_interaction_anticipation.json").write_text(json.dumps(records))
    out = tmp_path / "ds"
    assert main(["build", "hd-epic", str(source), "--out", str(out), "--on-error", "skip"]) == 2
    err = capsys.readouterr().err
    report = out / "skipped_hd-epic.json"
    assert f"no hd-epic questions were built (skipped 3 records; report: {report})" in err
    assert [json.loads(line)["field"] for line in report.read_text().splitlines()] == ["question"] * 3
    custom = tmp_path / "reports" / "skips.jsonl"
    assert main(["build", "hd-epic", str(source), "--out", str(out), "--on-error", "skip",
                 "--skip-report", str(custom)]) == 2
    assert len(custom.read_text().splitlines()) == 3
