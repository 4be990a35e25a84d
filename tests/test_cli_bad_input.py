"""Bad input, as a careless user types it: one clear line, exit status 2 at parse time for bad
arguments, nothing written, no traceback; and the later checks (foreign files, qids, damaged shards,
read-only or full disks, non-finite metrics)."""

from __future__ import annotations

import errno
import json
import math
import shutil
from pathlib import Path

import pytest

from vqa_shap.hub import folder as hub
from vqa_shap.builders import SAMPLE_DIR
from vqa_shap.cli import build_parser, main

OFFICIAL_HD = Path(__file__).parent / "fixtures" / "official" / "hd-epic" / "vqa-benchmark"


@pytest.fixture
def paths(tmp_path):
    """Existing folders for positional arguments, a file, and an output folder that must stay absent."""
    (tmp_path / "q").mkdir()
    (tmp_path / "v").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "questions.json").write_text("[]")
    return {"Q": str(tmp_path / "q"), "V": str(tmp_path / "v"), "A": str(tmp_path / "a"),
            "FILE": str(tmp_path / "questions.json"), "DIR": str(tmp_path / "v"), "O": str(tmp_path / "out")}


EXPLAIN = ["explain", "{Q}", "--config", "egoschema", "--model", "tiny-random/llava_onevision",
           "--video-root", "{V}", "--out", "{O}"]
MASK = ["mask-bench", "{A}", "--config", "c", "--questions", "{Q}", "--video-root", "{V}", "--out", "{O}"]
METRICS = ["metrics", "{A}"]

# (argv, text the one-line error must contain)
PARSE_ERRORS = {
    "explain device": (EXPLAIN + ["--device", "tpu:9"], "unknown device 'tpu:9'"),
    "explain seed too big": (EXPLAIN + ["--seed", str(2**32)], "between 0 and 4294967295"),
    "explain seed negative": (EXPLAIN + ["--seed", "-1"], "argument --seed: must be between 0"),
    "explain sampler": (EXPLAIN + ["--sampler", "zigzag"], "unknown sampler 'zigzag'"),
    "explain frames huge": (EXPLAIN + ["--frames", "10000"], "argument --frames: must be between 1 and 4096"),
    "explain frames zero": (EXPLAIN + ["--frames", "0"], "argument --frames: must be between 1"),
    "explain budget huge": (EXPLAIN + ["--budget", "1000000000"], "argument --budget: must be between 1 and 10000000"),
    "explain name escapes": (EXPLAIN + ["--name", "../../evil"], "invalid name '../../evil'"),
    "explain out is a file": (["explain", "{Q}", "--config", "c", "--model", "m", "--video-root", "{V}",
                               "--out", "{FILE}"], "is a file; give a folder"),
    "explain questions is a file": (["explain", "{FILE}", "--config", "c", "--model", "m", "--video-root", "{V}",
                                     "--out", "{O}"], "questions.json is a file, not a folder"),
    "explain estimator": (EXPLAIN + ["--estimator", "guess"], "unknown estimator 'guess'; valid estimators:"),
    "explain batch size": (EXPLAIN + ["--batch-size", "0"], "argument --batch-size"),
    "explain threads": (EXPLAIN + ["--threads", "0"], "argument --threads"),
    "explain dtype": (EXPLAIN + ["--dtype", "float8"], "unknown dtype 'float8'"),
    "explain protocol": (EXPLAIN + ["--protocol", "mine"], "unknown protocol 'mine'; valid protocols: pollard2025"),
    "augment seed": (["augment", "{Q}", "--config", "egoschema", "--variant", "easy", "--seed", "-1"], "argument --seed"),
    "augment variant": (["augment", "{Q}", "--config", "egoschema", "--variant", "medium"], "unknown variant 'medium'"),
    "metrics confidence": (METRICS + ["--confidence", "1.5"], "strictly between 0 and 1"),
    "metrics confidence nan": (METRICS + ["--confidence", "nan"], "must be a finite number"),
    "metrics bootstrap huge": (METRICS + ["--bootstrap", "100000000"], "argument --bootstrap: must be between 0 and 1000000"),
    "metrics bootstrap negative": (METRICS + ["--bootstrap", "-5"], "argument --bootstrap"),
    "metrics json is a folder": (METRICS + ["--json", "{DIR}"], "is a folder; give a file path"),
    "mask-bench batch size": (MASK + ["--batch-size", "0"], "argument --batch-size"),
    "mask-bench threshold nan": (MASK + ["--threshold", "nan"], "argument --threshold: must be a finite number"),
    "mask-bench threads": (MASK + ["--threads", "0"], "argument --threads"),
    "mask-bench name escapes": (MASK + ["--name", "../../evil"], "invalid name"),
    "push repo id": (["push", "{Q}", "not a repo/id!"], "invalid repository id 'not a repo/id!'"),
    "push repo id depth": (["push", "{Q}", "a/b/c"], "invalid repository id 'a/b/c'"),
    "build out is a file": (["build", "egoschema", "{Q}", "--out", "{FILE}"], "is a file; give a folder"),
    "build skip report is a folder": (["build", "egoschema", "{Q}", "--out", "{O}", "--skip-report", "{DIR}"],
                                      "argument --skip-report"),
    "build source is a file": (["build", "egoschema", "{FILE}", "--out", "{O}"], "is a file, not a folder"),
    "rank seed": (["rank", "{A}", "--config", "c", "--ranker", "random", "--seed", "-1"], "argument --seed"),
    "demo seed": (["demo", "--out", "{O}", "--seed", "-1"], "argument --seed"),
    "demo questions": (["demo", "--out", "{O}", "--questions", "0"], "argument --questions"),
    "features frames": (["features", "{Q}", "--config", "c", "--json", "{O}/f.json", "--frames", "0"], "argument --frames"),
    "report bootstrap": (["report", "{A}", "--out", "{O}", "--bootstrap", "-1"], "argument --bootstrap"),
    "view bootstrap": (["view", "{A}", "--out", "{O}", "--bootstrap", "-1"], "argument --bootstrap"),
    "view out is a file": (["view", "{A}", "--out", "{FILE}"], "is a file; give a folder"),
    "view attributions is a file": (["view", "{FILE}", "--out", "{O}"], "questions.json is a file, not a folder"),
    "view config escapes": (["view", "{A}", "--out", "{O}", "--config", "../x"], "invalid name '../x'"),
    "view no configs": (["view", "{A}", "--out", "{O}"], "no dataset configs found"),
    "view interactions is a file": (["view", "{A}", "--out", "{O}", "--interactions", "{FILE}"],
                                    "questions.json is a file, not a folder"),
}


@pytest.mark.parametrize("case", list(PARSE_ERRORS))
def test_bad_arguments_fail_at_parse_time(case, paths, capsys):
    argv, expected = PARSE_ERRORS[case]
    assert main([a.format(**paths) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert lines[0].startswith(f"vqa-shap {argv[0]}: error: ")
    assert not Path(paths["O"]).exists()  # nothing written


@pytest.mark.parametrize("command", ["explain", "mask-bench", "import-paper"])
def test_commands_refuse_a_foreign_readme_before_any_work(command, paths, capsys):
    out = Path(paths["O"])
    out.mkdir()
    (out / "README.md").write_text("mine\n")
    argv = {"explain": EXPLAIN, "mask-bench": MASK,
            "import-paper": ["import-paper", "{A}", "--questions", "{Q}", "--config", "c", "--model", "m",
                             "--out", "{O}"]}[command]
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("README.md exists and is not a vqa-shap dataset card; choose another output folder "
                        "(or pass --overwrite to replace it)")
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]


def test_mask_bench_has_threads():
    args = build_parser("mask-bench").parse_args(
        ["mask-bench", ".", "--config", "c", "--questions", ".", "--video-root", ".", "--out", "o", "--threads", "2"])
    assert args.threads == 2


def test_build_never_replaces_a_foreign_readme_or_writes_into_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# my own notes\n")
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", "."]) == 2
    assert "README.md exists and is not a vqa-shap dataset card" in capsys.readouterr().err
    assert (tmp_path / "README.md").read_text() == "# my own notes\n"
    assert not (tmp_path / "egoschema").exists()
    source = tmp_path / "src"
    shutil.copytree(SAMPLE_DIR, source)
    before = sorted(p.name for p in source.iterdir())
    assert main(["build", "egoschema", str(source), "--out", str(source)]) == 2
    assert "is the source folder" in capsys.readouterr().err
    assert sorted(p.name for p in source.iterdir()) == before
    # explicitly asked: --overwrite replaces the README with the card
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", ".", "--overwrite"]) == 0
    assert hub.list_configs(tmp_path) == ["egoschema"]


@pytest.mark.parametrize("qid", ["..", "../../x", "/abs/path", "a/b", ".hidden", "a\\b"])
def test_build_rejects_qids_that_are_paths(qid, tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    records = json.loads((OFFICIAL_HD / "gaze_interaction_anticipation.json").read_text())
    records[qid] = records.pop("gaze_interaction_anticipation_1")
    (source / "gaze_interaction_anticipation.json").write_text(json.dumps(records))
    out = tmp_path / "ds"
    assert main(["build", "hd-epic", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "gaze_interaction_anticipation.json" in err and repr(qid) in err and "field 'q_uid'" in err
    assert main(["build", "hd-epic", str(source), "--out", str(out), "--on-error", "skip"]) == 0
    assert len(hub.load_questions(out, "hd-epic")) == 2


@pytest.mark.parametrize("text", ["", "   "])
def test_build_rejects_an_empty_question(text, tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    records = json.loads((OFFICIAL_HD / "gaze_interaction_anticipation.json").read_text())
    records["gaze_interaction_anticipation_1"]["question"] = text
    (source / "gaze_interaction_anticipation.json").write_text(json.dumps(records))
    assert main(["build", "hd-epic", str(source), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "'gaze_interaction_anticipation_1': field 'question': empty question text" in err


def _questions_folder(tmp_path) -> Path:
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 0
    return out


def test_damaged_or_extra_shard_files_are_one_line(tmp_path, capsys):
    out = _questions_folder(tmp_path)
    shard = out / "egoschema" / "test-00000-of-00001.parquet"
    good = shard.read_bytes()
    shutil.copy(shard, out / "egoschema" / "test-00001-of-00001.parquet")  # an extra shard file
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "easy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config 'egoschema'" in err and "test-00001-of-00001.parquet" in err
    (out / "egoschema" / "test-00001-of-00001.parquet").unlink()
    shard.write_bytes(good[:300])  # truncated
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "easy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{shard}: config 'egoschema': not a readable parquet file" in err


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "read-only file system"),
                                          (errno.ENOSPC, "no space left on the device"),
                                          (errno.EACCES, "permission denied")])
def test_os_errors_name_the_path_in_one_line(code, reason, tmp_path, monkeypatch, capsys):
    target = tmp_path / "ds" / "README.md"

    def refuse(*args, **kwargs):
        raise OSError(code, "simulated", str(target))

    monkeypatch.setattr(hub, "write_config", refuse)  # the disk boundary: root ignores chmod, so simulate
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vqa-shap build: error: cannot write or read {target}: {reason}"


def test_metrics_json_is_valid_with_infinite_standard_errors(tmp_path, capsys):
    from vqa_shap.schema.records import Attribution, Feature
    from vqa_shap.schema.arrow import attribution_features

    feats = [Feature("f0", "video"), Feature("w0", "question"), Feature("a0", "answer", option=0)]
    rows = [Attribution(f"q{i}", "bench", "task", "original", "model", "loader", "pollard2025", feats,
                        [[0.5, -0.1], [0.2, 0.0], [0.1, 0.3]], stderr=[[math.inf, 0.1], [0.2, math.inf], [0.1, 0.1]],
                        answer=0, prediction=0).to_row() for i in range(3)]
    folder = tmp_path / "attrs"
    hub.write_config(folder, "m__bench", rows, features=attribution_features(), kind="attributions")
    report = tmp_path / "metrics.json"
    assert main(["metrics", str(folder), "--json", str(report), "--bootstrap", "20"]) == 0

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    written = json.loads(report.read_text(), parse_constant=reject)  # strict JSON
    assert any(v is None for row in written for v in (row.get("se") or {}).values())


def test_argument_types_accept_good_values(tmp_path):
    from vqa_shap.commands import argtypes

    assert argtypes.seed("4294967295") == 2**32 - 1 and argtypes.seed("0") == 0
    assert [argtypes.device(d) for d in ("auto", "cpu", "cuda", "cuda:1", "mps")] == ["auto", "cpu", "cuda", "cuda:1", "mps"]
    assert argtypes.repo_id("me/my-bench_v1.0") == "me/my-bench_v1.0" and argtypes.repo_id("bench") == "bench"
    assert argtypes.confidence("0.95") == 0.95 and argtypes.finite_float("-0.5") == -0.5
    assert argtypes.config_name("llava-ov__hd-epic_hard_5") == "llava-ov__hd-epic_hard_5"
    assert argtypes.frames("1024") == 1024 and argtypes.bootstrap("0") == 0
    assert argtypes.variant("hard_20") == "hard_20" and argtypes.dtype("bf16") == "bf16"
    assert argtypes.out_file(str(tmp_path / "new.json")) == tmp_path / "new.json"
    assert argtypes.out_folder(str(tmp_path / "new")) == tmp_path / "new"


def test_a_file_given_as_a_dataset_folder_is_named_a_file(tmp_path):
    from vqa_shap.errors import VqaShapError

    path = tmp_path / "questions.json"
    path.write_text("[]")
    with pytest.raises(VqaShapError, match="questions.json is a file, not a dataset folder"):
        hub.load_config(path, "egoschema")
