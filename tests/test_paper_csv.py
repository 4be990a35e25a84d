"""The paper's per-question CSVs: import, export, prediction, errors, and the import-paper/metrics CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from vqa_shap.errors import RecordError, VqaShapError
from vqa_shap.analysis.paper_csv import (
    attribution_from_csv, attribution_to_csv, csv_filename, import_csv_dir, paper_evaluations,
    parse_csv_filename, prediction_from_sums, read_paper_csv, write_csv,
)
from vqa_shap.schema.records import Attribution

BENCHMARKS = ("egoschema", "hd-epic", "mvbench", "lvbench")
MODELS = ("frozenbilm", "internvideo")
TIED = "object_motion_stationary_object_localization_173"  # HD-EPIC question with tied column sums


@pytest.fixture(scope="module")
def questions(pollard_dir):
    """{benchmark: [Question]} of the fixture subsets, built by the pollard2025 builder."""
    from vqa_shap.builders import get_builder

    built = get_builder("pollard2025").build(pollard_dir).configs
    return {bench: built[bench] for bench in BENCHMARKS}


@pytest.fixture(scope="module")
def protocol():
    from vqa_shap.protocol import get_protocol

    return get_protocol("pollard2025")


@pytest.fixture(scope="module")
def questions_folder(tmp_path_factory, questions):
    from vqa_shap.hub import folder as hub

    folder = tmp_path_factory.mktemp("questions")
    for bench in ("egoschema", "hd-epic"):
        hub.write_questions(folder, bench, questions[bench])
    return folder


def by_qid(questions, bench):
    return {q.qid: q for q in questions[bench]}


# ------------------------------------------------------------------------------ import / export


def test_every_published_csv_imports_and_exports_byte_for_byte(pollard_dir, questions, protocol, tmp_path):
    n = 0
    for model in MODELS:
        for bench in BENCHMARKS:
            csv_dir = pollard_dir / "shapley" / model / bench
            result = import_csv_dir(csv_dir, questions[bench], protocol, model)
            assert result.stray == ()
            for attr in result.attributions:
                original = csv_dir / csv_filename(attr.qid)
                table = attribution_to_csv(attr)
                theirs = pd.read_csv(original, keep_default_na=False)
                assert list(table.columns) == list(theirs.columns)  # element, A, "B: Ground Truth", …
                assert list(table["element"]) == list(theirs["element"])
                np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), theirs.iloc[:, 1:].to_numpy(),
                                           rtol=0, atol=1e-12)
                out = write_csv(attr, tmp_path / model / bench / original.name)
                assert out.read_bytes() == original.read_bytes()
                n += 1
    assert n == 2 * 4 * 12


def test_imported_row_fields(pollard_dir, questions, protocol):
    q = questions["egoschema"][0]
    attr = attribution_from_csv(pollard_dir / "shapley/frozenbilm/egoschema" / csv_filename(q.qid), q,
                                protocol, "frozenbilm")
    table = read_paper_csv(pollard_dir / "shapley/frozenbilm/egoschema" / csv_filename(q.qid))
    n_frames = table.n_frames
    assert n_frames == 10
    assert [f.modality for f in attr.features[:n_frames]] == ["video"] * n_frames
    assert all(f.input == 0 for f in attr.features[:n_frames])  # one visual input
    assert attr.features[n_frames:] == protocol.text_features(q)
    assert {f.option for f in attr.features if f.modality == "answer"} == set(range(q.n_options))
    f = attr.n_features
    assert attr.evaluations == (5000 // (2 * f + 1)) * (2 * f + 1) == paper_evaluations(f)
    assert (attr.estimator, attr.budget, attr.seed) == ("shap-permutation", 5000, 0)
    assert attr.value_full is None and attr.value_empty is None and attr.stderr is None
    assert attr.answer == q.answer == table.answer
    assert (attr.qid, attr.benchmark, attr.task, attr.variant) == (q.qid, q.benchmark, q.task, q.variant)
    assert paper_evaluations(128) == 19 * 257
    assert parse_csv_filename(csv_filename(TIED)) == (TIED, 5000, "joint")


def test_multi_input_frames_have_unknown_input(pollard_dir, questions, protocol):
    multi = [q for q in questions["hd-epic"] if len(q.inputs) > 1]
    assert multi
    q = multi[0]
    attr = attribution_from_csv(pollard_dir / "shapley/frozenbilm/hd-epic" / csv_filename(q.qid), q,
                                protocol, "frozenbilm")
    assert all(f.input == -1 for f in attr.features if f.modality == "video")


# ---------------------------------------------------------------------------------- prediction


def test_prediction_from_sums_for_frozenbilm_and_internvideo(pollard_dir, questions, protocol):
    for model in MODELS:
        for bench in BENCHMARKS:
            for attr in import_csv_dir(pollard_dir / "shapley" / model / bench, questions[bench], protocol,
                                       model).attributions:
                sums = attr.shapley.sum(axis=0)
                assert attr.prediction is not None
                assert sums[attr.prediction] >= sums.max() - 1e-9
                assert all(sums[k] < sums.max() - 1e-9 for k in range(attr.prediction))


def test_prediction_ties_go_to_the_lowest_index(pollard_dir, questions, protocol):
    q = by_qid(questions, "hd-epic")[TIED]
    iv = attribution_from_csv(pollard_dir / "shapley/internvideo/hd-epic" / csv_filename(TIED), q, protocol,
                              "internvideo")
    sums = iv.shapley.sum(axis=0)
    assert np.ptp(sums) < 1e-12 and int(np.argmax(sums)) != 0  # all five tie up to float noise
    assert iv.prediction == 0  # torch's argmax on the exact tie
    fblm = attribution_from_csv(pollard_dir / "shapley/frozenbilm/hd-epic" / csv_filename(TIED), q, protocol,
                                "frozenbilm")
    assert fblm.prediction == 0  # options 0 and 3 tie
    assert prediction_from_sums(np.array([[1.0, 3.0, 3.0 + 1e-13, 2.0]])) == 1
    assert prediction_from_sums(np.array([[1.0, 3.0, 3.0 + 1e-6, 2.0]])) == 2


def test_prediction_is_null_for_generative_models(pollard_dir, questions, protocol):
    q = questions["mvbench"][0]
    path = pollard_dir / "shapley/frozenbilm/mvbench" / csv_filename(q.qid)
    assert attribution_from_csv(path, q, protocol, "llava-video").prediction is None
    assert attribution_from_csv(path, q, protocol, "frozenbilm", derive_prediction=False).prediction is None
    assert attribution_from_csv(path, q, protocol, "my-vlm", derive_prediction=True).prediction is not None


# -------------------------------------------------------------------------------------- errors


def _copy(pollard_dir, model, bench, qid, tmp_path):
    src = pollard_dir / "shapley" / model / bench / csv_filename(qid)
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def test_text_rows_that_differ_from_the_protocol_fail_naming_the_csv(pollard_dir, questions, protocol, tmp_path):
    q = questions["egoschema"][0]
    path = _copy(pollard_dir, "frozenbilm", "egoschema", q.qid, tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    word = lines[12].split(",")[0]
    lines[12] = lines[12].replace(word, word + "x", 1)
    path.write_text("".join(lines))
    with pytest.raises(RecordError) as err:
        attribution_from_csv(path, q, protocol, "frozenbilm")
    assert str(path) in str(err.value) and q.qid in str(err.value) and "'element'" in str(err.value)
    assert repr(word + "x") in str(err.value)


def test_header_and_answer_mismatches_fail(pollard_dir, questions, protocol, tmp_path):
    q = questions["egoschema"][0]
    path = _copy(pollard_dir, "frozenbilm", "egoschema", q.qid, tmp_path)
    text = path.read_text()
    header, rest = text.split("\n", 1)
    path.write_text(header.replace(": Ground Truth", "") + "\n" + rest)
    with pytest.raises(RecordError, match="exactly one ': Ground Truth'"):
        read_paper_csv(path)
    cols = header.split(",")
    moved = ["element"] + [c.replace(": Ground Truth", "") for c in cols[1:]]
    other = 1 if q.answer != 1 else 2
    moved[other + 1] += ": Ground Truth"
    path.write_text(",".join(moved) + "\n" + rest)
    with pytest.raises(RecordError, match="question's answer"):
        attribution_from_csv(path, q, protocol, "frozenbilm")
    path.write_text(header + "\n" + rest.replace(",", ",x,", 1))
    with pytest.raises(RecordError, match="row 2"):
        read_paper_csv(path)
    fewer = dataclasses.replace(q, options=q.options[:-1], option_origin=())
    path.write_text(text)
    with pytest.raises(RecordError, match="5 option columns but the question has 4 options"):
        attribution_from_csv(path, fewer, protocol, "frozenbilm")


def test_missing_csvs_fail_or_become_error_rows(pollard_dir, questions, protocol, tmp_path):
    qs = questions["lvbench"]
    for q in qs[:-1]:
        _copy(pollard_dir, "internvideo", "lvbench", q.qid, tmp_path)
    shutil.copy(pollard_dir / "shapley/internvideo/egoschema" / csv_filename(questions["egoschema"][0].qid),
                tmp_path)
    with pytest.raises(VqaShapError, match="1 of 12 questions have no CSV"):
        import_csv_dir(tmp_path, qs, protocol, "internvideo")
    result = import_csv_dir(tmp_path, qs, protocol, "internvideo", allow_missing=True)
    assert [a.qid for a in result.attributions] == [q.qid for q in qs]
    assert result.attributions[-1].error.startswith("no published CSV")
    assert result.stray == (csv_filename(questions["egoschema"][0].qid),)


# ------------------------------------------------------------------------------------------ CLI


def test_import_paper_round_trips_through_load_dataset(pollard_dir, questions, protocol, questions_folder,
                                                       tmp_path, capsys):
    from datasets import load_dataset

    from vqa_shap.cli import main
    from vqa_shap.schema.arrow import attribution_features

    out = tmp_path / "attributions"
    rc = main(["import-paper", str(pollard_dir / "shapley/frozenbilm/hd-epic"), "--questions",
               str(questions_folder), "--config", "hd-epic", "--model", "frozenbilm", "--out", str(out)])
    assert rc == 0
    assert "frozenbilm__hd-epic" in capsys.readouterr().out
    ds = load_dataset(str(out), name="frozenbilm__hd-epic", split="test", download_mode="force_redownload")
    assert ds.features == attribution_features()
    rows = [Attribution.from_row(r) for r in ds]
    expected = import_csv_dir(pollard_dir / "shapley/frozenbilm/hd-epic", questions["hd-epic"], protocol,
                              "frozenbilm").attributions
    assert rows == list(expected)  # float64 storage: every value exact
    for row in rows:
        original = pollard_dir / "shapley/frozenbilm/hd-epic" / csv_filename(row.qid)
        assert attribution_to_csv(row).to_csv(index=False, lineterminator="\n") == original.read_text()
    card = (out / "README.md").read_text()
    yaml = card.split("---")[1]
    for key, value in (("model", "frozenbilm"), ("loader", "pollard2025-csv"), ("protocol", "pollard2025"),
                       ("estimator", "shap-permutation"), ("budget", "5000"), ("seed", "0")):
        assert f"{key}: {value}" in yaml, key
    assert "| `frozenbilm__hd-epic` | `frozenbilm` |" in card
    # a second import refuses to replace the config without --overwrite
    assert main(["import-paper", str(pollard_dir / "shapley/frozenbilm/hd-epic"), "--questions",
                 str(questions_folder), "--config", "hd-epic", "--model", "frozenbilm", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_import_paper_reports_a_mismatching_csv(pollard_dir, questions_folder, tmp_path, capsys):
    from vqa_shap.cli import main

    # EgoSchema tables checked against the HD-EPIC questions: no CSV for any of them
    rc = main(["import-paper", str(pollard_dir / "shapley/frozenbilm/egoschema"), "--questions",
               str(questions_folder), "--config", "hd-epic", "--model", "frozenbilm", "--out",
               str(tmp_path / "out")])
    assert rc == 2
    assert "12 of 12 questions have no CSV" in capsys.readouterr().err


def test_metrics_json_rows(pollard_dir, questions, questions_folder, tmp_path, capsys):
    from vqa_shap.cli import main

    out = tmp_path / "attributions"
    for model in MODELS:
        assert main(["import-paper", str(pollard_dir / "shapley" / model / "egoschema"), "--questions",
                     str(questions_folder), "--config", "egoschema", "--model", model, "--out", str(out)]) == 0
    capsys.readouterr()
    report = tmp_path / "metrics.json"
    markdown = tmp_path / "metrics.md"
    per_question = tmp_path / "per_question.csv"
    assert main(["metrics", str(out), "--json", str(report), "--markdown", str(markdown), "--paper-compat",
                 "--bootstrap", "200", "--per-question", str(per_question)]) == 0
    table = capsys.readouterr().out
    assert "MC V" in table and "frozenbilm__egoschema" in table and "internvideo__egoschema" in table
    rows = json.loads(report.read_text())
    assert len(rows) == 2 * 3
    answers = {q.qid: q.answer for q in questions["egoschema"]}
    for model in MODELS:
        mine = {r["signal"]: r for r in rows if r["model"] == model}
        assert set(mine) == {"Ground Truth", "False", "All"}
        published = pd.read_csv(pollard_dir / "shapley" / model / "egoschema_question_metrics.csv",
                                header=[0, 1], index_col=[0, 1])
        preds = {}
        for path in (pollard_dir / "shapley" / model / "egoschema").glob("*.csv"):
            qid = parse_csv_filename(path)[0]
            preds[qid] = prediction_from_sums(read_paper_csv(path).shapley)
        accuracy = np.mean([preds[q] == answers[q] for q in answers])
        for signal, row in mine.items():
            assert row["config"] == f"{model}__egoschema" and row["benchmark"] == "egoschema"
            assert row["variant"] == "original" and row["n_questions"] == 12 and row["n_errors"] == 0
            assert row["accuracy"] == pytest.approx(accuracy)
            sub = published.xs(signal, level=1)
            for group, prefix in (("Modality Contribution", "mc"), ("Per-Feature Contribution", "pf"),
                                  ("Ratio", "ratio"), ("Mean", "mean"), ("Var", "var")):
                for m in "VQA":
                    key = f"{prefix}_{m.lower()}"
                    assert row[key] == pytest.approx(sub[(group, m)].mean(), abs=1e-9), (model, signal, key)
                    lo, hi = row["ci"][key]
                    assert lo <= row[key] <= hi
            assert sum(row[f"md_{m}"] for m in "vqa") == pytest.approx(1.0)
            assert row["se"] is None  # the paper published no standard errors
    assert "Modality Contribution" in markdown.read_text()
    per_q = pd.read_csv(per_question, header=[0, 1], index_col=[0, 1, 2])
    assert len(per_q) == 2 * 12 * 3


def test_metrics_counts_error_rows_and_rejects_unknown_configs(pollard_dir, questions, questions_folder,
                                                                tmp_path, capsys):
    from vqa_shap.cli import main

    csv_dir = tmp_path / "csvs"
    csv_dir.mkdir()
    for q in questions["egoschema"][:10]:
        _copy(pollard_dir, "internvideo", "egoschema", q.qid, csv_dir)
    out = tmp_path / "attributions"
    assert main(["import-paper", str(csv_dir), "--questions", str(questions_folder), "--config", "egoschema",
                 "--model", "internvideo", "--out", str(out), "--allow-missing"]) == 0
    report = tmp_path / "m.json"
    assert main(["metrics", str(out), "--config", "internvideo__egoschema", "--json", str(report),
                 "--bootstrap", "0"]) == 0
    rows = json.loads(report.read_text())
    assert {(r["n_questions"], r["n_errors"]) for r in rows} == {(10, 2)}
    assert rows[0]["ci"] == {}
    capsys.readouterr()
    assert main(["metrics", str(out), "--config", "nope"]) == 2
    assert "unknown config" in capsys.readouterr().err


# ------------------------------------------------------------------------- Attribution record


def test_attribution_record_round_trips_and_validates():
    from datasets import Dataset

    from vqa_shap.schema.records import ATTRIBUTION_COLUMNS, Feature
    from vqa_shap.schema.arrow import attribution_features

    feats = (Feature("frame_0", "video", input=0, time=0.5), Feature("Why", "question"),
             Feature("Yes", "answer", option=0), Feature("No", "answer", option=1))
    phi = [[0.1, -0.2], [1 / 3, 0.0], [0.5, 0.0], [0.0, -0.7]]
    full = Attribution("q", "bench", "task", "original", "m", "l", "pollard2025", feats, phi,
                       stderr=[[0.01] * 2] * 4, value_full=[1.5, -0.5], value_empty=[0.5, 0.5],
                       answer=0, prediction=0, estimator="permutation", budget=100, evaluations=99,
                       seed=0, runtime_s=1.25, version="0.1.0")
    failed = Attribution("r", "bench", "task", "original", "m", "l", "pollard2025", (), [], answer=1,
                         error="video missing: x.mp4")
    assert full.shapley.dtype == np.float64 and full.shapley.shape == (4, 2) and not full.shapley.flags.writeable
    assert full.n_features == 4 and full.n_options == 2
    np.testing.assert_array_equal(full.modality_mask("answer"), [False, False, True, True])
    assert list(full.to_row()) == list(ATTRIBUTION_COLUMNS)
    ds = Dataset.from_list([full.to_row(), failed.to_row()], features=attribution_features())
    back = [Attribution.from_row(r) for r in ds]
    assert back == [full, failed]
    assert back[0].shapley[1, 0] == 1 / 3  # float64 storage: exact
    assert back[1].stderr is None and back[1].prediction is None and back[1].shapley.shape == (0, 0)
    with pytest.raises(ValueError, match="3 rows but there are 4 features"):
        Attribution("q", "b", "t", "original", "m", "l", "p", feats, phi[:3], answer=0)
    with pytest.raises(ValueError, match="stderr shape"):
        Attribution("q", "b", "t", "original", "m", "l", "p", feats, phi, stderr=[[0.1]] * 4, answer=0)
    with pytest.raises(ValueError, match="2-D"):
        Attribution("q", "b", "t", "original", "m", "l", "p", feats, [0.1, 0.2, 0.3, 0.4], answer=0)
    with pytest.raises(VqaShapError, match="video missing"):
        attribution_to_csv(failed)
