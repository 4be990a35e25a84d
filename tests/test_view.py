"""``vqa-shap view``: the static site's files and data (no browser; tests/test_view_browser.py drives one)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from helpers_view import BROKEN, CONFIGS, ERROR, MANY, N_FRAMES, write_view_folders


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return write_view_folders(tmp_path_factory.mktemp("view"), many=120)


def read_data(path: Path):
    """The value a data script assigns (``...D.x[key]=VALUE;``) as Python."""
    text = path.read_text(encoding="utf-8").strip()
    return json.loads(text[text.index("=", text.index("};") + 2) + 1:].rstrip(";"))


def view(folders, out: Path, *extra: str) -> int:
    from vqa_shap.cli import main

    return main(["view", str(folders["attributions"]), "--questions", str(folders["questions"]),
                 "--video-root", str(folders["videos"]), "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def site(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    assert view(folders, out, "--bootstrap", "50") == 0
    return out


def test_site_has_pages_assets_data_and_thumbnails(site):
    for name in ("index.html", "questions.html", "question.html", "compare.html", "assets/viewer.js",
                 "assets/viewer.css", "assets/placeholder.svg", "data/site.js", ".vqa-shap-manifest"):
        assert (site / name).is_file(), name
    info = read_data(site / "data" / "site.js")
    assert [c["name"] for c in info["configs"]] == sorted([*CONFIGS, MANY])
    for config in CONFIGS:
        details = read_data(site / "data" / config / "chunk-0.js")
        by_qid = {d["qid"]: d for d in details}
        ok = by_qid["ego_1"]
        assert len(ok["frames"]) == N_FRAMES and ok["frame_note"] is None
        for rel in ok["frames"]:
            from PIL import Image

            with Image.open(site / rel) as im:
                assert im.format == "JPEG" and im.size[1] == 96 and np.asarray(im).std() > 1
        assert by_qid[BROKEN]["frames"] is None and "cannot read video" in by_qid[BROKEN]["frame_note"]
        assert by_qid[ERROR]["error"] == "missing.mp4: file not found" and by_qid[ERROR]["phi"] == []
        assert ok["text"] == "What is the main activity of c in the video"
    many = read_data(site / "data" / MANY / "list.js")
    assert len(many["rows"]) == 120 and (site / "data" / MANY / "chunk-1.js").is_file()
    assert not (site / "data" / MANY / "chunk-2.js").exists()


def test_values_in_the_site_are_the_rows_and_the_metrics_module(site, folders):
    """φ, stderr (∞ kept as "inf") and the index's metrics equal the rows and subset_metrics."""
    from vqa_shap.analysis.metrics import subset_metrics
    from vqa_shap.schema.records import Attribution

    info = {c["name"]: c for c in read_data(site / "data" / "site.js")["configs"]}
    for config in CONFIGS:
        attrs = [Attribution.from_row(r) for r in folders["rows"][config]]
        details = read_data(site / "data" / config / "chunk-0.js")
        for attr, detail in zip(attrs, details):
            assert detail["qid"] == attr.qid
            if attr.error:
                continue
            np.testing.assert_allclose(np.array(detail["phi"]), attr.shapley, rtol=1e-4)
            assert detail["stderr"][0][0] == ("inf" if config == CONFIGS[1] else pytest.approx(attr.stderr[0, 0], rel=1e-4))
            np.testing.assert_allclose(np.array(detail["stderr"])[1:].astype(float), attr.stderr[1:], rtol=1e-4)
            assert [f[0] for f in detail["features"]] == [f.name for f in attr.features]
        subsets = subset_metrics(attrs, bootstrap=50)
        for sub in subsets:
            entry = info[config]["metrics"][sub.signal]
            for key in ("mc_v", "mc_q", "mc_a", "pf_v", "pf_q", "pf_a"):
                mean, low, high = entry[key]
                assert mean == pytest.approx(sub.values[key], rel=1e-4)
                assert (low, high) == pytest.approx(sub.ci[key], rel=1e-4)
                se = sub.se[key]  # an ∞ stderr propagates to ∞, written as "inf"
                assert entry["se"][key] == ("inf" if np.isinf(se) else pytest.approx(se, rel=1e-4))
                assert entry["accuracy"][0] == pytest.approx(sub.accuracy, rel=1e-4)
        assert info[config]["n_errors"] == 1 and info[config]["n_rows"] == 4


def test_question_pages_carry_the_estimated_error_and_the_players_within_two_stderr_of_zero(site, folders):
    """Each question's relative_error (list column and detail, with its label) and, per player and option,
    whether |φ| <= 2 stderr: what the page marks."""
    from vqa_shap.schema.records import Attribution
    from vqa_shap.view.data import LIST_COLUMNS, error_label

    marked = unmarked = 0
    labels = set()
    for config in CONFIGS:
        attrs = [Attribution.from_row(r) for r in folders["rows"][config]]
        details = read_data(site / "data" / config / "chunk-0.js")
        listed = read_data(site / "data" / config / "list.js")
        assert listed["columns"][-1] == LIST_COLUMNS[-1] == "relative_error"
        for attr, detail, row in zip(attrs, details, listed["rows"]):
            if attr.error:
                assert detail["near_zero"] is None and detail["error_label"] == "n/a" and row[-1] is None
                continue
            rel = attr.relative_error
            assert rel is not None and rel > 0
            expected = "inf" if np.isinf(rel) else pytest.approx(rel, rel=1e-4)
            assert detail["relative_error"] == expected and row[-1] == expected
            assert detail["error_label"] == error_label(rel) and detail["error_label"] != "n/a"
            near = np.array(detail["near_zero"])
            np.testing.assert_array_equal(near, (np.abs(attr.shapley) <= 2 * attr.stderr).astype(int))
            if np.isinf(attr.stderr[0, 0]):
                assert near[0, 0] == 1  # an infinite stderr cannot tell a value from zero
            marked, unmarked = marked + int(near.sum()), unmarked + int((near == 0).sum())
            labels.add(detail["error_label"])
    assert marked > 0 and unmarked > 0 and len(labels) > 1
    js = (site / "assets" / "viewer.js").read_text()
    assert "near-zero" in js and "error_label" in js and "near-zero" in (site / "assets" / "viewer.css").read_text()


def test_error_labels_and_near_zero_marks():
    from vqa_shap.view.data import error_label, near_zero

    assert [error_label(v) for v in (0.0, None, float("inf"), 0.4712, 1.26)] == ["exact", "n/a", "∞", "0.47", "1.3"]
    assert near_zero(np.array([[0.1, -1.0], [0.0, 0.3]]), None) is None  # exact values: nothing to mark
    assert near_zero(np.array([[0.1, -1.0], [0.0, 0.3]]), np.array([[0.05, 0.4], [0.0, np.inf]])) == [[1, 0], [1, 1]]


def test_site_is_self_contained(site):
    """No page, script or style refers to anything outside the folder (no CDN, no network)."""
    remote = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(|XMLHttpRequest""")
    for path in site.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            assert not remote.search(path.read_text(encoding="utf-8")), path
    html = (site / "question.html").read_text()
    for ref in re.findall(r"""(?:src|href)="([^"]+)\"""", html):
        assert (site / ref).is_file() or ref.endswith(".html"), ref


def test_rebuild_replaces_the_site_and_leaves_no_temporary_folder(folders, tmp_path):
    out = tmp_path / "site"
    assert view(folders, out, "--config", CONFIGS[0], "--bootstrap", "0") == 0
    (out / "notes.txt").write_text("the user's, added after the build")
    assert view(folders, out, "--config", CONFIGS[1], "--bootstrap", "0") == 0
    assert (out / "notes.txt").read_text() == "the user's, added after the build"  # only the viewer's files go
    assert not (out / "data" / CONFIGS[0]).exists()
    assert [c["name"] for c in read_data(out / "data" / "site.js")["configs"]] == [CONFIGS[1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_a_failed_build_leaves_the_old_site(folders, tmp_path, monkeypatch):
    from vqa_shap.view import site as site_module

    out = tmp_path / "site"
    assert view(folders, out, "--config", CONFIGS[0], "--bootstrap", "0") == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(site_module, "_copy_reports", boom)
    from vqa_shap.cli import main

    with pytest.raises(RuntimeError, match="disk gone"):  # -vv: the unexpected error is raised, not printed
        main(["-vv", "view", str(folders["attributions"]), "--out", str(out), "--bootstrap", "0", "--no-progress"])
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


@pytest.mark.parametrize("args, message", [
    (["--video-root", "{videos}"], "--video-root needs --questions"),
    (["--config", "nope"], "unknown config(s) ['nope']"),
    (["--questions", "{questions}", "--questions-config", "nope"], "no questions config(s) ['nope']"),
    (["--out", "{foreign}"], "is not empty and was not written by vqa-shap view"),
])
def test_bad_input_is_one_line_with_status_2(args, message, folders, tmp_path, capsys):
    from vqa_shap.cli import main

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    args = [a.format(videos=folders["videos"], questions=folders["questions"], foreign=foreign) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "site")]
    assert main(["view", str(folders["attributions"]), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert (foreign / "notes.txt").read_text() == "mine" and not (tmp_path / "site").exists()


def test_missing_attributions_folder_fails_at_parse_time(tmp_path, capsys):
    from vqa_shap.cli import main

    assert main(["view", str(tmp_path / "none"), "--out", str(tmp_path / "site")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_configs_with_unknown_columns_or_other_schemas_do_not_break_the_site(folders, tmp_path, capsys):
    """An attributions config with extra columns is shown; a config of another schema is skipped."""
    import shutil

    from vqa_shap.hub import folder as hub

    data = tmp_path / "attributions"
    shutil.copytree(folders["attributions"], data)
    from datasets import Dataset, Features, List, Value

    from vqa_shap.schema.arrow import attribution_features

    extra = [dict(r, interactions=[[0.5, -0.25]], pairs=["frame_0|cup"]) for r in folders["rows"][CONFIGS[0]]]
    features = Features({**attribution_features(), "interactions": List(List(Value("float64"))),
                         "pairs": List(Value("string"))})
    hub.write_config(data, "with-extras__mini", extra, features=features, kind="attributions")
    pairs = Dataset.from_list([{"qid": "ego_1", "i": 0, "j": 1, "value": -0.5}])
    hub.write_config(data, "pairs__mini", pairs, features=pairs.features, kind="attributions")
    bad = [dict(r, shapley=r["shapley"][:-1]) for r in folders["rows"][CONFIGS[0]][:1]]  # a row φ does not fit
    hub.write_config(data, "bad-shape__mini", bad, features=attribution_features(), kind="attributions")
    from vqa_shap.cli import main

    assert main(["view", str(data), "--out", str(tmp_path / "site"), "--no-progress", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipped non-attributions config pairs__mini: " in out and "is not an attributions dataset" in out
    assert "skipped non-attributions config bad-shape__mini: " in out
    assert "row 0 (qid 'ego_1'): Attribution 'ego_1': shapley has" in out
    names = [c["name"] for c in read_data(tmp_path / "site" / "data" / "site.js")["configs"]]
    assert "with-extras__mini" in names and "pairs__mini" not in names and "bad-shape__mini" not in names
    assert main(["view", str(data), "--config", "bad-shape__mini", "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config 'bad-shape__mini' cannot be shown: " in err
    assert "row 0 (qid 'ego_1'): Attribution 'ego_1': shapley has" in err
    details = read_data(tmp_path / "site" / "data" / "with-extras__mini" / "chunk-0.js")
    assert len(details) == 4 and "interactions" not in details[0]


def test_report_figures_are_copied_and_listed(folders, tmp_path):
    from PIL import Image

    report = tmp_path / "report"
    report.mkdir()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(report / "modality_shares.png")
    assert view(folders, tmp_path / "site", "--config", CONFIGS[0], "--report", str(report), "--bootstrap", "0") == 0
    assert read_data(tmp_path / "site" / "data" / "site.js")["reports"] == ["report/modality_shares.png"]
    assert (tmp_path / "site" / "report" / "modality_shares.png").read_bytes() == (report / "modality_shares.png").read_bytes()


def test_numbers_keep_non_finite_values_json_safe():
    from vqa_shap.view.data import matrix, number

    assert number(float("nan")) is None and number(float("inf")) == "inf" and number(-np.inf) == "-inf"
    assert number(0.123456789) == 0.12346 and number(None) is None
    assert matrix(np.array([[1.0, np.inf], [np.nan, -2.5e-7]])) == [[1.0, "inf"], [None, -2.5e-7]]
    assert matrix(np.array([[1 / 3, 2.0]])) == [[0.33333, 2.0]]


def test_five_thousand_questions_build(tmp_path):
    """Scale: a config of 5,000 rows builds (the time is printed; scripts/bench_view.py measures it)."""
    from vqa_shap.measure.view_site import synthetic_attributions
    from vqa_shap.view.site import build_site

    rows = synthetic_attributions(5000)
    started = time.perf_counter()
    result = build_site({"demo__synthetic": rows}, tmp_path / "site", bootstrap=200)
    print(f"\n5,000 questions: site built in {time.perf_counter() - started:.1f} s")
    listed = read_data(tmp_path / "site" / "data" / "demo__synthetic" / "list.js")["rows"]
    assert len(listed) == 5000 and result.n_errors == sum(r.error is not None for r in rows) == 51
    assert len(list((tmp_path / "site" / "data" / "demo__synthetic").glob("chunk-*.js"))) == 50
    assert read_data(tmp_path / "site" / "data" / "demo__synthetic" / "chunk-49.js")[-1]["qid"] == "q04999"


ROOT = Path(__file__).resolve().parents[1]


def test_viewer_doc_table_equals_the_committed_benchmark():
    from vqa_shap.measure.view_site import render_doc

    report = json.loads((ROOT / "benchmarks" / "bench_view.json").read_text())
    assert report["n_questions"] == 5000 and len(report["runs"]) >= 2
    doc = (ROOT / "docs" / "viewer.md").read_text()
    assert render_doc(doc, report) == doc, ("regenerate: python scripts/bench_view.py --from-json "
                                            "benchmarks/bench_view.json --doc docs/viewer.md")


def test_bench_script_measures_and_regenerates_the_table(tmp_path, capsys):
    from helpers import script_main

    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- view-bench:start -->\nold\n<!-- view-bench:end -->\nafter\n")
    main = script_main("bench_view.py")
    assert main(["--questions", "40", "--seeds", "0", "1", "--bootstrap", "0", "--json", str(tmp_path / "b.json"),
                 "--doc", str(doc)]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert [r["seed"] for r in report["runs"]] == [0, 1] and report["n_questions"] == 40
    assert min(report["ci95_s"]) <= report["mean_s"] <= max(report["ci95_s"])
    text = doc.read_text()
    assert "old" not in text and "| 40 | 2 (0, 1) |" in text and text.endswith("<!-- view-bench:end -->\nafter\n")
    assert main(["--from-json", str(tmp_path / "b.json"), "--doc", str(doc)]) == 0 and doc.read_text() == text
    assert main(["--seeds", "0"]) == 2


def test_each_config_reads_its_own_questions_config(tmp_path):
    """Variants share qids: the original and the hard_1 config each show their own options and frames."""
    from helpers_view import VARIANT, VARIANT_QUESTIONS

    folders = write_view_folders(tmp_path / "data", variant=True)
    assert view(folders, tmp_path / "site", "--config", CONFIGS[0], "--config", VARIANT, "--bootstrap", "0") == 0
    original = read_data(tmp_path / "site" / "data" / CONFIGS[0] / "chunk-0.js")[0]
    hard = read_data(tmp_path / "site" / "data" / VARIANT / "chunk-0.js")[0]
    assert original["qid"] == hard["qid"] == "ego_1"
    assert hard["options"] == [*original["options"], "Never"] and len(hard["phi"][0]) == 4
    assert len(original["frames"]) == len(hard["frames"]) == N_FRAMES  # both re-planned against their own question
    assert original["frame_note"] is None and hard["frame_note"] is None
    # one questions config named on the command line serves every config
    assert view(folders, tmp_path / "site", "--config", VARIANT, "--questions-config", VARIANT_QUESTIONS) == 0
    assert read_data(tmp_path / "site" / "data" / VARIANT / "chunk-0.js")[0]["options"] == hard["options"]
