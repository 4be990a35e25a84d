"""The careless user's inputs of issue 11, run through the real ``vqa-shap`` entry point (``cli.main``).

One case per bad input the issue lists (and the runtime errors around them), each asserting: exit
status 2 (bad input) with one line ``vqa-shap CMD: error: ...`` naming the file/config/field, no
traceback, nothing written half-way (the shared workspace is byte-for-byte unchanged and no output
folder appears). Cases that other tests already run through ``main`` are listed in :data:`COVERED`
with the test that covers them (a test below checks those tests still exist), not run twice.

Unwritable outputs are real, not simulated: even root cannot create anything under ``/sys`` (sysfs),
so ``--out /sys/...`` exercises the same ``OSError`` path as a read-only folder or a full disk.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import pytest

from vqa_shap.cli import COMMANDS, build_parser, main

MODEL = "tiny-random/llava_onevision"
CONFIG = "toy"
ATTRS = "tiny-random-llava_onevision__toy"
TESTS = Path(__file__).parent
OFFICIAL_HD = TESTS / "fixtures" / "official" / "hd-epic" / "vqa-benchmark"
#: A path nobody can create, root included (sysfs refuses new entries).
UNWRITABLE = Path("/sys/vqa-shap-fuzz")
needs_sysfs = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/sys/kernel").is_dir(),
                                 reason="needs a Linux sysfs mount as an unwritable folder")


def _questions(n: int = 4):
    from vqa_shap.schema.records import Question, VisualInput

    return [Question(f"q{i}", "egoschema", "summary", f"What does c do {i}?", ("cut", "wash", "read"), i % 3,
                     inputs=(VisualInput("video", f"v/q{i}.mp4"),)) for i in range(n)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A questions folder (config ``toy``), its videos and one explain output, made through the CLI."""
    import torch

    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("fuzz")
    questions = _questions()
    write_questions(root / "qs", CONFIG, questions)
    synthesize_inputs(questions, root / "videos", n_frames=8, size=(32, 32), seed=0)
    threads = torch.get_num_threads()
    try:
        assert main(["explain", str(root / "qs"), "--config", CONFIG, "--model", MODEL, "--video-root",
                     str(root / "videos"), "--out", str(root / "attrs"), "--frames", "2", "--budget", "8",
                     "--threads", "1", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "Q": root / "qs", "V": root / "videos", "A": root / "attrs"}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# setups: each returns extra {placeholders} for the case's argv


def _hd_source(tmp: Path, edit: Callable[[dict], object] | None = None, text: str | None = None) -> dict:
    source = tmp / "src"
    source.mkdir()
    file = source / "gaze_interaction_anticipation.json"
    if text is not None:
        file.write_text(text)
    else:
        records = json.loads((OFFICIAL_HD / file.name).read_text())
        if edit:
            edit(records)
        file.write_text(json.dumps(records))
    return {"SRC": source}


def _subset_csv(ws, tmp: Path) -> dict:
    info = _hd_source(tmp)
    with open(tmp / "subset.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["q_uid"], ["gaze_interaction_anticipation_1"], ["no_such_question_9"]])
    return {**info, "CSV": tmp / "subset.csv"}


def _copy_ws(ws, tmp: Path, *keys: str) -> dict:
    for key in keys:
        shutil.copytree(ws[key], tmp / key.lower())
    return {key + "2": tmp / key.lower() for key in keys}


def _one_question(ws, tmp: Path) -> dict:
    from vqa_shap.hub.folder import write_questions

    write_questions(tmp / "one", CONFIG, _questions(1))
    return {"ONE": tmp / "one"}


def _hand_made_questions(**change):
    """A questions folder written without ``vqa-shap build`` whose first row is broken (no schema check on write)."""

    def setup(ws, tmp: Path) -> dict:
        from vqa_shap.hub import folder as hub
        from vqa_shap.schema.arrow import question_features

        rows = [q.to_row() for q in _questions()]
        rows[0].update(change)
        hub.write_config(tmp / "bad", CONFIG, rows, features=question_features(), kind="questions")
        return {"BAD": tmp / "bad"}

    return setup


def _hand_made_attributions(**change):
    """A copy of the explain output whose first row is inconsistent (e.g. edited by hand)."""

    def setup(ws, tmp: Path) -> dict:
        from vqa_shap.hub import folder as hub
        from vqa_shap.hub.card import folder_meta
        from vqa_shap.schema.arrow import attribution_features

        shutil.copytree(ws["A"], tmp / "bad")
        rows = hub.load_config(ws["A"], ATTRS).to_list()
        rows[0].update({k: (v(rows[0]) if callable(v) else v) for k, v in change.items()})
        card = folder_meta(ws["A"])["configs"][ATTRS]
        hub.write_config(tmp / "bad", ATTRS, rows, features=attribution_features(), kind="attributions",
                         card_vars=card, overwrite=True)
        return {"BAD": tmp / "bad"}

    return setup


def _locked(ws, tmp: Path) -> dict:
    """Hold the work-directory lock of the case's explain (as a running explain would) until the test ends."""
    from vqa_shap.explain.workdir import Shard, attributions_config, work_dir_for

    context = work_dir_for(tmp / "out", attributions_config(MODEL, CONFIG)).lock(Shard())
    context.__enter__()
    return {"_cleanup": lambda: context.__exit__(None, None, None)}


def _no_hub_token(ws, tmp: Path, monkeypatch) -> dict:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return {}


def _full_disk(ws, tmp: Path, monkeypatch) -> dict:
    """The disk fills while the variant's shards are written (the one write path every config uses)."""
    import errno

    from vqa_shap.hub import folder as hub

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(ws["Q"] / "egoschema_easy"))

    monkeypatch.setattr(hub, "write_config", full)
    return {}


@dataclasses.dataclass(frozen=True)
class Case:
    argv: str                      #: the command line; {Q} {V} {A} {T} {O} {X} and setup keys are filled in
    says: tuple[str, ...]          #: texts the one-line error must contain (file / config / field / value)
    setup: Callable | None = None  #: (ws, tmp[, monkeypatch]) -> extra placeholders
    status: int = 2


EXPLAIN = f"explain {{Q}} --config {CONFIG} --model {MODEL} --video-root {{V}} --frames 2 --budget 8 --no-progress"
MASK = f"mask-bench {{A}} --config {ATTRS} --questions {{Q}} --video-root {{V}} --no-progress"
IMPORT = f"import-paper {{T}} --questions {{Q}} --config {CONFIG} --model frozenbilm"

#: case id -> Case. ``{X}`` is an unwritable path (read-only folder / full disk, for real).
CASES: dict[str, Case] = {
    # --- build: bad source files and records (runtime, after parsing)
    "build: no annotation files in the source": Case("build hd-epic {T} --out {O}", ("no HD-EPIC annotation files",)),
    "build: annotation file is not JSON": Case(
        "build hd-epic {SRC} --out {O}", ("gaze_interaction_anticipation.json",),
        lambda ws, t: _hd_source(t, text='{"gaze_interaction_anticipation_1": {')),
    "build: annotation file is a list": Case(
        "build hd-epic {SRC} --out {O}", ("gaze_interaction_anticipation.json", "expected a JSON object"),
        lambda ws, t: _hd_source(t, text="[]")),
    "build: record with a wrong-typed field": Case(
        "build hd-epic {SRC} --out {O}", ("'gaze_interaction_anticipation_1'", "'choices'"),
        lambda ws, t: _hd_source(t, lambda r: r["gaze_interaction_anticipation_1"].update(choices=7))),
    "build: blank video id": Case(
        "build hd-epic {SRC} --out {O}", ("'gaze_interaction_anticipation_1'", "'inputs.video 1.id'", "empty video path"),
        lambda ws, t: _hd_source(t, lambda r: r["gaze_interaction_anticipation_1"]["inputs"]["video 1"].update(id=" "))),
    "build: --subset lists an unknown q_uid": Case(
        "build hd-epic {SRC} --out {O} --subset {CSV}", ("subset.csv", "no_such_question_9"), _subset_csv),
    "build: --subset file missing": Case("build hd-epic {SRC} --out {O} --subset {T}/none.csv", ("none.csv",),
                                         lambda ws, t: _hd_source(t)),
    "build: --skip-report unwritable": Case(
        "build hd-epic {SRC} --out {O} --on-error skip --skip-report {X}/skips.jsonl", (f"{UNWRITABLE}",),
        lambda ws, t: _hd_source(t, lambda r: r["gaze_interaction_anticipation_1"].pop("question"))),
    "build: --out unwritable (read-only folder)": Case("build egoschema {SAMPLE} --out {X}", (f"{UNWRITABLE}",)),
    # --- augment
    "augment: unknown config": Case("augment {Q} --config nope --variant easy", ("no config 'nope'", "configs: toy")),
    "augment: folder is not a dataset": Case("augment {T} --config toy --variant easy", ("no config 'toy'",)),
    "augment: easy from one question": Case("augment {ONE} --config toy --variant easy", ("config 'toy'", "at least 2"),
                                            _one_question),
    "augment: hard_5 pool cannot serve": Case("augment {Q} --config toy --variant hard_5", ("config 'toy'", "hard_5")),
    "augment: full disk while writing": Case("augment {Q} --config toy --variant easy",
                                             ("no space left on the device", "egoschema_easy"), _full_disk),
    # --- explain: bad inputs found at run time, all before any model work
    "explain: unknown config": Case(EXPLAIN.replace(f"--config {CONFIG}", "--config nope") + " --out {O}",
                                    ("no config 'nope'",)),
    "explain: attributions folder given as questions": Case(
        EXPLAIN.replace("{Q} --config toy", f"{{A}} --config {ATTRS}") + " --out {O}", ("not a questions config",)),
    "explain: existing config without --overwrite": Case(EXPLAIN + " --out {A2}", (ATTRS, "--overwrite"),
                                                          lambda ws, t: _copy_ws(ws, t, "A")),
    "explain: changed --video-root reuses nothing": Case(
        EXPLAIN.replace("{V}", "{V2}") + " --out {A2} --overwrite", ("video_root",),
        lambda ws, t: _copy_ws(ws, t, "A", "V")),
    "explain: changed --dtype reuses nothing": Case(EXPLAIN + " --out {A2} --overwrite --dtype bfloat16", ("dtype",),
                                                    lambda ws, t: _copy_ws(ws, t, "A")),
    "explain: work directory locked by another explain": Case(EXPLAIN + " --out {O}", ("another explain",), _locked),
    "explain: --rank not below --world-size": Case(EXPLAIN + " --out {O} --rank 12 --world-size 10", ("rank",)),
    "explain: model folder does not exist": Case(EXPLAIN.replace(MODEL, "{T}/no-model") + " --out {O}", ("no-model",)),
    "explain: unknown tiny-random family": Case(EXPLAIN.replace(MODEL, "tiny-random/nope") + " --out {O}", ("nope",)),
    "explain: --loader does not match the model": Case(EXPLAIN + " --out {O} --loader videollama2", ("videollama2",)),
    "explain: --device cuda without CUDA": Case(EXPLAIN + " --out {O} --device cuda", ("cuda",)),
    "explain: --out unwritable": Case(EXPLAIN + " --out {X}", (f"{UNWRITABLE}",)),
    "explain: hand-made questions, answer out of range": Case(
        EXPLAIN.replace("{Q}", "{BAD}") + " --out {O}", ("config 'toy'", "'q0'", "'answer'"), _hand_made_questions(answer=9)),
    "explain: hand-made questions, empty question string": Case(
        EXPLAIN.replace("{Q}", "{BAD}") + " --out {O}", ("'q0'", "'question'", "empty question"),
        _hand_made_questions(question="  ")),
    "explain: hand-made questions, one option": Case(
        EXPLAIN.replace("{Q}", "{BAD}") + " --out {O}", ("'q0'", "'options'"), _hand_made_questions(options=["cut"])),
    "augment: hand-made questions, answer out of range": Case(
        "augment {BAD} --config toy --variant easy", ("'q0'", "'answer'"), _hand_made_questions(answer=-1)),
    "features: hand-made questions, empty option": Case(
        "features {BAD} --config toy --json {O}/f.json", ("'q0'", "'options'", "option 1 is empty"),
        _hand_made_questions(options=["cut", "", "read"])),
    # --- merge
    "merge: folder without work directories": Case("merge {T}", ("no explain work directories",)),
    "merge: --out unwritable": Case("merge {A} --out {X}", (f"{UNWRITABLE}",)),
    # --- metrics
    "metrics: questions folder given": Case("metrics {Q}", ("not an attributions dataset",)),
    "metrics: --json unwritable (full disk / read-only)": Case("metrics {A} --bootstrap 5 --json {X}/m.json",
                                                               (f"{UNWRITABLE}",)),
    "metrics: --markdown unwritable": Case("metrics {A} --bootstrap 5 --markdown {X}/m.md", (f"{UNWRITABLE}",)),
    "metrics: --per-question unwritable": Case("metrics {A} --bootstrap 5 --per-question {X}/q.csv",
                                               (f"{UNWRITABLE}",)),
    "metrics: attribution row with an answer out of range": Case(
        "metrics {BAD} --bootstrap 5", (ATTRS, "row 0", "'q0'", "answer 9"), _hand_made_attributions(answer=9)),
    # --- features
    "features: --json unwritable": Case(f"features {{Q}} --config {CONFIG} --json {{X}}/f.json", (f"{UNWRITABLE}",)),
    # --- mask-bench
    "mask-bench: unknown attributions config": Case(MASK.replace(ATTRS, "nope") + " --out {O}", ("no config 'nope'",)),
    "mask-bench: questions folder lacks the recorded config": Case(MASK.replace("{Q}", "{ONE}") + " --out {O}"
                                                                   " --questions-config other", ("other",),
                                                                   _one_question),
    "mask-bench: attribution row with fewer values than features": Case(
        MASK.replace("{A}", "{BAD}") + " --out {O}", ("row 0", "'q0'", "features"),
        _hand_made_attributions(shapley=lambda row: row["shapley"][:-1], stderr=None)),
    "mask-bench: --out unwritable": Case(MASK + " --out {X}", (f"{UNWRITABLE}",)),
    # --- rank
    "rank: unknown config": Case("rank {A} --config nope --ranker random", ("no config 'nope'",)),
    "rank: attribution row without features": Case(
        f"rank {{BAD}} --config {ATTRS} --ranker random", ("row 0", "'q0'"),
        _hand_made_attributions(features=[], stderr=None)),
    "rank: --json unwritable": Case(f"rank {{A}} --config {ATTRS} --ranker random --json {{X}}/r.json",
                                    (f"{UNWRITABLE}",)),
    # --- report
    "report: unknown config": Case("report {A} --config nope --out {O}", ("nope",)),
    "report: attribution row with an answer out of range": Case(
        f"report {{BAD}} --config {ATTRS} --out {{O}} --no-progress", ("row 0", "answer -2"),
        _hand_made_attributions(answer=-2)),
    "report: --out unwritable": Case(f"report {{A}} --config {ATTRS} --out {{X}} --no-progress", (f"{UNWRITABLE}",)),
    # --- import-paper
    "import-paper: no CSV for the questions": Case(IMPORT + " --out {O}", ("have no CSV",)),
    "import-paper: --out unwritable": Case(IMPORT + " --out {X} --allow-missing", (f"{UNWRITABLE}",)),
    # --- push (the network boundary is never reached)
    "push: folder with no configs": Case("push {T} me/bench", ("no configs to push",)),
    "push: not logged in": Case("push {Q} me/bench", ("not logged in",), _no_hub_token),
    # --- demo
    "demo: --out unwritable": Case("demo --out {X} --questions 1", (f"{UNWRITABLE}",)),
}

#: Issue cases that other tests already run through ``main`` with the assertions above: case -> test.
COVERED: dict[str, str] = {
    # data lost
    "demo --out DIR holding unmerged shard results": "test_explain_inputs.py::test_demo_refuses_a_folder_holding_unmerged_shard_results",
    "build --out . over the user's README / --out = source": "test_cli_bad_input.py::test_build_never_replaces_a_foreign_readme_or_writes_into_the_source",
    # containment
    "build qid '..', '../../x', '/abs/path'": "test_cli_bad_input.py::test_build_rejects_qids_that_are_paths",
    "explain / mask-bench --name ../../evil": "test_cli_bad_input.py::test_bad_arguments_fail_at_parse_time",
    "explain --name: nothing written before the refusal": "test_explain_inputs.py::test_bad_name_is_refused_before_anything_is_written",
    # hang / memory / empty shard / JSON
    "explain --frames 10000": "test_explain_inputs.py::test_too_many_frames_is_refused_up_front",
    "explain --rank 9 --world-size 10 (empty shard)": "test_explain_inputs.py::test_empty_shard_finishes_cleanly_and_merge_completes",
    "metrics JSON with infinite standard errors": "test_cli_bad_input.py::test_metrics_json_is_valid_with_infinite_standard_errors",
    # damaged files
    "truncated parquet / extra shard file": "test_cli_bad_input.py::test_damaged_or_extra_shard_files_are_one_line",
    "build: record missing a field": "test_cli_build.py::test_build_on_error_raise_names_file_record_and_field",
    "build: empty question string": "test_cli_bad_input.py::test_build_rejects_an_empty_question",
    "build --on-error skip when nothing builds": "test_official_files.py::test_skip_report_is_written_when_nothing_builds",
    "build / augment: config exists; variant of a variant": "test_cli_build.py::test_augment_adds_variant_configs",
    "merge: questions without a result": "test_explain.py::test_merge_cli_reports_and_fails_cleanly",
    "rank --ranker gemini without an API key": "test_ranking.py::test_rank_cli_gemini_without_a_key_fails_early",
    "metrics / features: unknown config": "test_paper_csv.py::test_metrics_counts_error_rows_and_rejects_unknown_configs",
    # every unchecked argument of the issue, at parse time
    "--device tpu:9, seed > 2**32, augment --seed -1, --confidence 1.5, --bootstrap 1e8/-5, "
    "--batch-size 0, --threshold nan, push 'not a repo/id!' / a/b/c, --out a file, --skip-report a folder, "
    "--sampler zigzag, --seed -1, explain on a file, mask-bench --threads":
        "test_cli_bad_input.py::test_bad_arguments_fail_at_parse_time",
    "build --out unwritable, simulated errno per reason": "test_cli_bad_input.py::test_os_errors_name_the_path_in_one_line",
}


def _fill(argv: str, places: dict) -> list[str]:
    return [part.format(**places) for part in argv.split()]


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case_id, ws, tmp_path, monkeypatch, capsys):
    from vqa_shap.builders import SAMPLE_DIR

    case = CASES[case_id]
    if "{X}" in case.argv and not (sys.platform.startswith("linux") and Path("/sys/kernel").is_dir()):
        pytest.skip("needs a Linux sysfs mount as an unwritable folder")
    places = {"Q": ws["Q"], "V": ws["V"], "A": ws["A"], "T": tmp_path, "O": tmp_path / "out", "X": UNWRITABLE,
              "SAMPLE": SAMPLE_DIR}
    if case.setup is not None:
        extra = case.setup(ws, tmp_path, monkeypatch) if case.setup.__code__.co_argcount == 3 else case.setup(ws, tmp_path)
        places.update(extra)
    cleanup = places.pop("_cleanup", None)
    before = _snapshot(ws["root"])
    capsys.readouterr()
    try:
        status = main(_fill(case.argv, places))
    finally:
        if cleanup:
            cleanup()
    err = capsys.readouterr().err
    command = case.argv.split()[0]
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert "Traceback" not in err, err
    assert status == case.status, err
    assert len(errors) == 1 and errors[0].startswith(f"vqa-shap {command}: error: "), err
    for text in case.says:
        assert text in errors[0], (text, errors[0])
    assert _snapshot(ws["root"]) == before  # nothing the user already had was touched
    out = places["O"]
    assert not out.exists() or case_id.startswith("explain: work directory locked"), "half-written output"
    assert not UNWRITABLE.exists()


def test_covered_cases_point_at_existing_tests():
    for where in COVERED.values():
        file, name = where.split("::")
        assert re.search(rf"^def {re.escape(name)}\(", (TESTS / file).read_text(), re.M), where


#: The issue's unchecked arguments, by option: every command that has the option must check it at parse time.
VALIDATED_OPTIONS = {
    "seed": "seed", "device": "device", "frames": "frames", "budget": "budget", "bootstrap": "bootstrap",
    "batch_size": "batch_size", "threads": "threads", "confidence": "confidence", "threshold": "finite_float",
    "name": "config_name", "config": "config_name", "questions_config": "config_name", "out_config": "config_name",
    "sampler": "sampler", "dtype": "dtype", "protocol": "protocol", "estimator": "estimator", "variant": "variant",
    "skip_report": "out_file", "json": "out_file", "json_out": "out_file", "markdown": "out_file",
    "per_question": "out_file", "plot": "out_file", "repo_id": "repo_id",
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_named_argument_is_checked_at_parse_time(command):
    from vqa_shap.commands import argtypes

    sub = build_parser(command)._subparsers._group_actions[0].choices[command]
    checked = []
    for action in sub._actions:
        expected = VALIDATED_OPTIONS.get(action.dest)
        if expected is None or action.choices is not None:
            continue
        validator = getattr(argtypes, expected)
        # --config may be repeatable (append): the element type is what matters
        assert action.type is validator, f"{command} --{action.dest}: type {action.type!r}, expected argtypes.{expected}"
        checked.append(action.dest)
    outs = [a for a in sub._actions if a.dest in ("out", "work_dir")]
    assert all(a.type is argtypes.out_folder for a in outs), command
    assert checked or outs or command in ("merge",), command


def test_fixed_answer_is_explained_again_with_overwrite_through_the_cli(ws, tmp_path, capsys):
    """Silently wrong before: after fixing an answer and rebuilding, explain --overwrite kept the old one."""
    from vqa_shap.hub import folder as hub

    questions = shutil.copytree(ws["Q"], tmp_path / "qs")
    out = shutil.copytree(ws["A"], tmp_path / "attrs")
    fixed = _questions()
    fixed[1] = dataclasses.replace(fixed[1], answer=2, question="What does c hold?")
    hub.write_questions(questions, CONFIG, fixed, overwrite=True)
    argv = _fill(EXPLAIN + " --out {O} --overwrite --threads 1", {"Q": questions, "V": ws["V"], "O": out})
    assert main(argv) == 0
    assert "1 explained now, 3 resumed, 0 errors" in capsys.readouterr().out
    row = hub.load_config(out, ATTRS)[1]
    assert row["qid"] == "q1" and row["answer"] == 2
    assert any("hold" in f["name"] for f in row["features"] if f["modality"] == "question")


def test_oversized_question_is_an_error_row_and_short_video_warns_once_through_the_cli(ws, tmp_path, caplog):
    """A question too long to fit is an error row (not a crash of the run, nothing dropped); a 1-frame video
    with --frames 4 keeps the paper's repeated frames but says so once per run."""
    import logging

    from vqa_shap.hub import folder as hub
    from vqa_shap.explain_options import MAX_PLAYERS
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = _questions(3)
    questions[1] = dataclasses.replace(questions[1], question=" ".join(["word"] * (MAX_PLAYERS + 10)) + "?")
    hub.write_questions(tmp_path / "qs", CONFIG, questions)
    synthesize_inputs(questions, tmp_path / "videos", n_frames=1, size=(32, 32), seed=0)
    places = {"Q": tmp_path / "qs", "V": tmp_path / "videos", "O": tmp_path / "out"}
    argv = _fill(EXPLAIN + " --out {O} --frames 4 --threads 1", places)  # the last --frames wins
    with caplog.at_level(logging.WARNING, logger="vqa_shap"):
        assert main(argv) == 0
    rows = hub.load_config(tmp_path / "out", ATTRS)
    assert list(rows["qid"]) == ["q0", "q1", "q2"]
    assert rows["error"][0] is None and rows["error"][2] is None
    assert f"exceed the limit of {MAX_PLAYERS}" in rows["error"][1]
    assert [f["modality"] for f in rows[0]["features"]].count("video") == 4
    repeats = [r for r in caplog.records if "distinct frame" in r.getMessage()]
    assert len(repeats) == 1
