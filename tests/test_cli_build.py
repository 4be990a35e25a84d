"""The build / augment / push commands, run in-process through vqa_shap.cli.main (the demo command is
tested in test_demo_model.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import DatasetCard

from test_hub import SECRET, FakeHfApi  # the fake Hub of the hub tests (network boundary only)
from vqa_shap.hub import folder as hub
from vqa_shap.builders import SAMPLE_DIR, get_builder
from vqa_shap.cli import main
from vqa_shap.schema.arrow import question_features


def sample_questions():
    return get_builder("egoschema").build(SAMPLE_DIR).configs["egoschema"]


def test_build_writes_the_sample_and_refuses_to_replace_it_without_overwrite(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "built 8 questions" in printed and "egoschema: 8 questions" in printed and "skipped 0 records" in printed
    assert hub.list_configs(out) == ["egoschema"]
    assert hub.load_questions(out, "egoschema") == sample_questions()
    assert not list(out.glob("skipped_*"))  # no report when nothing was skipped

    before = (out / "egoschema" / "test-00000-of-00001.parquet").stat().st_mtime_ns
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "config(s) egoschema already exist; pass --overwrite" in err and "Traceback" not in err
    assert (out / "egoschema" / "test-00000-of-00001.parquet").stat().st_mtime_ns == before
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out), "--overwrite"]) == 0
    assert hub.load_questions(out, "egoschema") == sample_questions()


def test_build_into_an_existing_folder_adds_configs(tmp_path, pollard_dir, capsys):
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 0
    assert main(["build", "hd-epic", str(pollard_dir / "raw" / "hd-epic"), "--out", str(out)]) == 0
    assert hub.list_configs(out) == ["egoschema", "hd-epic"]
    assert hub.load_questions(out, "egoschema") == sample_questions()
    built = get_builder("hd-epic").build(pollard_dir / "raw" / "hd-epic").configs["hd-epic"]
    assert hub.load_questions(out, "hd-epic") == built
    body = (out / "README.md").read_text()
    assert "built with `vqa-shap build hd-epic`" in body and "built with `vqa-shap build egoschema`" in body


def broken_sample(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the sample with one record missing its question; returns (folder, that record's id)."""
    source = tmp_path / "src"
    shutil.copytree(SAMPLE_DIR, source)
    records = json.loads((source / "questions.json").read_text())
    del records[2]["question"]
    (source / "questions.json").write_text(json.dumps(records))
    return source, records[2]["q_uid"]


def test_build_on_error_raise_names_file_record_and_field(tmp_path, capsys):
    source, bad = broken_sample(tmp_path)
    assert main(["build", "egoschema", str(source), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "questions.json" in err and bad in err and "'question'" in err
    assert not (tmp_path / "ds" / "egoschema").exists()


def test_build_on_error_skip_writes_the_good_records_and_a_report(tmp_path, capsys):
    source, bad = broken_sample(tmp_path)
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(source), "--out", str(out), "--on-error", "skip"]) == 0
    printed = capsys.readouterr().out
    report = out / "skipped_egoschema.json"
    assert f"skipped 1 records; report: {report}" in printed
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["record"], r["field"]) for r in lines] == [(bad, "question")]
    assert [q.qid for q in hub.load_questions(out, "egoschema")] == [q.qid for q in sample_questions() if q.qid != bad]

    custom = tmp_path / "reports" / "skips.jsonl"
    assert main(["build", "egoschema", str(source), "--out", str(out), "--on-error", "skip",
                 "--overwrite", "--skip-report", str(custom)]) == 0
    assert json.loads(custom.read_text())["record"] == bad


def test_build_with_a_subset_keeps_its_ids_in_csv_order(tmp_path):
    wanted = [q.qid for q in sample_questions()][::-3]
    csv = tmp_path / "my_subset.csv"
    csv.write_text("q_uid\n" + "\n".join(wanted) + "\n")
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out), "--subset", str(csv)]) == 0
    assert [q.qid for q in hub.load_questions(out, "egoschema")] == wanted
    assert "(subset `my_subset.csv`)" in (out / "README.md").read_text()


def test_augment_adds_variant_configs(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 0
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "hard_5", "--seed", "3"]) == 0
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "easy", "--paper-exact"]) == 0
    assert "added egoschema_hard_5: 8 questions" in capsys.readouterr().out
    assert hub.list_configs(out) == ["egoschema", "egoschema_easy", "egoschema_hard_5"]

    originals = {q.qid: q for q in sample_questions()}
    hard = hub.load_questions(out, "egoschema_hard_5")
    assert [q.qid for q in hard] == list(originals)
    for question in hard:
        original = originals[question.qid]
        assert question.variant == "hard_5" and question.n_options == original.n_options + 5
        assert question.options[question.answer] == original.options[original.answer]
    assert hub.load_config(out, "egoschema_easy").features == question_features()
    meta = DatasetCard.load(out / "README.md").data.to_dict()["vqa_shap"]["configs"]
    hard_vars = meta["egoschema_hard_5"]
    assert (hard_vars["source_config"], hard_vars["seed"], hard_vars["dedupe"]) == ("egoschema", 3, True)
    assert meta["egoschema_easy"]["dedupe"] is False

    # a variant of a variant, an unknown variant, an existing variant: one clean error line each
    assert main(["augment", str(out), "--config", "egoschema_easy", "--variant", "hard_5"]) == 2
    assert "needs original questions" in capsys.readouterr().err
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "medium"]) == 2
    assert "unknown variant 'medium'" in capsys.readouterr().err
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "hard_5"]) == 2
    assert "'egoschema_hard_5' already exists" in capsys.readouterr().err
    assert main(["augment", str(out), "--config", "egoschema", "--variant", "hard_5", "--overwrite"]) == 0


def test_push_command_with_a_fake_hub_never_shows_the_token(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    out = tmp_path / "ds"
    assert main(["build", "egoschema", str(SAMPLE_DIR), "--out", str(out)]) == 0
    fake = FakeHfApi()
    fake.download_dir = tmp_path
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *a, **k: fake)
    monkeypatch.setenv("HF_TOKEN", SECRET)

    assert main(["push", str(out), "me/bench", "--private"]) == 0
    assert main(["push", str(out), "me/bench"]) == 2  # the config is on the Hub now
    assert main(["push", str(out), "me/bench", "--overwrite"]) == 0
    printed = capsys.readouterr()
    assert "pushed 1 config(s) to https://huggingface.co/datasets/me/bench: egoschema" in printed.out
    assert "replaced: egoschema" in printed.out
    assert "hub repo me/bench already has config(s) egoschema; pass overwrite=True (--overwrite)" in printed.err
    assert SECRET not in printed.out + printed.err
    creates = [kwargs for name, kwargs in fake.calls if name == "create_repo"]
    assert [c["private"] for c in creates] == [True, False, False]
    assert hub.load_questions(fake.materialize(tmp_path / "remote"), "egoschema") == sample_questions()
