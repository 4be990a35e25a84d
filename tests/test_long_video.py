"""The long-video comparison: its synthetic layout, its summary, and docs/shots.md's tables agreeing
with the committed benchmarks/long_video.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vqa_shap.measure import long_video as lv
from vqa_shap.measure.stats import mean_ci
from vqa_shap.builders.shapes_long_video import HOLD, SHORT_SHOTS, SHORT_TOTAL, long_video_items, short_evidence_items

REPO_ROOT = Path(__file__).resolve().parents[1]
JSON = REPO_ROOT / "benchmarks" / "long_video.json"
DOC = REPO_ROOT / "docs" / "shots.md"


def test_long_video_items_hold_each_frame_as_a_shot(tmp_path):
    from vqa_shap.builders.shapes import sample_items
    from vqa_shap.long_video.shots import video_shots
    from vqa_shap.video import read_frames, video_info

    items = long_video_items(3, 11, tmp_path)
    originals = list(sample_items(3, seed=11))
    for item, original in zip(items, originals):
        path = tmp_path / item.question.inputs[0].path
        assert video_info(path).n_frames == item.n_frames and HOLD[0] * 8 <= item.n_frames <= HOLD[1] * 8
        frames = read_frames(path, list(range(item.n_frames))).astype(float)
        # every evidence frame of the long video shows an evidence frame of the original (noise ~3 levels)
        for t in item.evidence:
            best = min(np.abs(frames[t] - original.frames[k]).mean() for k in original.evidence_frames)
            assert best < 4.0
        # the detected cuts separate the evidence frames from the others
        cuts = video_shots(path, detector="diff").cuts
        edges = (0, *cuts, item.n_frames)
        for a, b in zip(edges[:-1], edges[1:]):
            inside = {t in item.evidence for t in range(a, b)}
            assert len(inside) == 1, (a, b)


def test_short_evidence_layout_hides_the_evidence_from_uniform_sampling(tmp_path):
    from vqa_shap.builders.shapes import sample_items
    from vqa_shap.protocol import get_protocol
    from vqa_shap.long_video.shots import video_shots
    from vqa_shap.video import read_frames

    proto, missed, total = get_protocol(), 0, 0
    for seed in (3, 4, 5):
        items = short_evidence_items(8, seed, tmp_path / str(seed))
        originals = list(sample_items(8, seed=seed, n_frames=SHORT_SHOTS, n_evidence=1))
        for item, original in zip(items, originals):
            root = tmp_path / str(seed)
            ev = sorted(item.evidence)
            assert item.n_frames == SHORT_TOTAL and 1 <= len(ev) <= 2 and ev == list(range(ev[0], ev[-1] + 1))
            frames = read_frames(root / item.question.inputs[0].path, list(range(item.n_frames))).astype(float)
            target = original.frames[original.evidence_frames[0]].astype(float)
            # the evidence frames, and only they, show the question's evidence frame
            shows = [np.abs(f - target).mean() < 4.0 for f in frames]
            assert [t for t, hit in enumerate(shows) if hit] == ev
            cuts = video_shots(root / item.question.inputs[0].path, detector="diff").cuts
            assert ev[0] in cuts and ev[-1] + 1 in cuts  # a shot of its own
            uniform = proto.plan_frames(item.question, root, 8, sampler="linspace", loader_family="llava_onevision")
            candidates = proto.plan_frames(item.question, root, SHORT_TOTAL, sampler="aks",
                                           loader_family="llava_onevision")
            assert item.evidence <= {f.index for f in candidates.frames}
            missed += not item.evidence & {f.index for f in uniform.frames}
            total += 1
    assert missed >= 0.7 * total, (missed, total)
    again = short_evidence_items(8, 5, tmp_path / "again")
    assert [it.evidence for it in again] == [it.evidence for it in items]
    with pytest.raises(ValueError, match="need >= 3 shots"):
        short_evidence_items(1, 0, tmp_path / "bad", n_total=20, n_shots=8)


def test_summary_means_and_intervals():
    rows = [{"layout": layout, "budget": b, "players": p, "top1": h, "evaluations": 10, "cost": 1.0, "seconds": 0.5}
            for layout, b, p, h in [("frames", 64, 32, 1.0), ("frames", 64, 32, 0.0), ("shots", 64, 6, 1.0),
                                    ("shots", 64, 8, 1.0), ("shots", 128, 8, 0.0)]]
    rows[-1]["correct"] = 1.0
    samplers = [{"uniform_correct": 1.0, "uniform_recall": 0.0, "aks_correct": 1.0, "aks_recall": 1.0,
                 "oracle_correct": 0.0, "oracle_recall": 1.0, "spearman": 0.5, "kendall": float("nan")}] * 2
    s = lv.summarise(rows, samplers)
    assert list(s["players"]) == ["frames@64", "shots@64", "shots@128"]
    # the one mean-CI (vqa_shap.measure.stats): Student t with n - 1 = 1 degree of freedom, t = 12.706
    assert s["players"]["frames@64"]["top1"] == pytest.approx([0.5, 12.7062 * np.std([1, 0], ddof=1) / np.sqrt(2)])
    assert s["players"]["shots@64"]["players"][0] == 7.0 and s["samplers"]["aks"]["recall"] == [1.0, 0.0]
    # one row: its half-width is undefined, stored as None (JSON null), not as a certain 0.0
    assert "correct" not in s["players"]["shots@64"] and s["players"]["shots@128"]["correct"] == [1.0, None]
    assert s["agreement"]["spearman"] == [0.5, 0.0]
    assert lv.summarise(rows, [])["samplers"] == {}


def test_parts_merge_and_render():
    part = {"settings": {"layout": "held", "n_questions": 2, "seeds": [0], "n_frames": 8, "estimator": "x"},
            "machine": {"loadavg_before": [1.0, 1.0, 1.0]}, "sampler_rows": [],
            "player_rows": [{"layout": "frames", "budget": 8, "players": 8, "top1": 1.0, "evaluations": 9,
                             "cost": 2.0, "seconds": 0.1}]}
    part["summary"] = lv.summarise(part["player_rows"], [])
    result = lv.merge_part(lv.merge_part(None, "a", part), "b", part)
    assert list(result["parts"]) == ["a", "b"] and lv.merge_part(result, "a", part) == result
    text = lv.format_tables(result)
    assert text.count("| frames | 8 | 8.0 ± – | 1.00 ± – | 9 ± – |") == 2 and "**b**" in text  # one row: no CI


def _no_nan(constant):
    raise AssertionError(f"benchmarks/long_video.json has a bare {constant}: strict JSON parsers reject it")


def test_doc_tables_are_generated_from_the_committed_json():
    result = json.loads(JSON.read_text(), parse_constant=_no_nan)
    text = DOC.read_text()
    start, end = text.index(lv.DOC_START), text.index(lv.DOC_END)
    assert text[start + len(lv.DOC_START) + 1:end] == lv.format_tables(result)
    for part in result["parts"].values():
        settings = part["settings"]
        assert part["machine"]["threads"] == 1 and len(part["machine"]["loadavg_before"]) == 3
        n = settings["n_questions"]
        assert len(part["sampler_rows"]) in (0, n)
        assert len(part["player_rows"]) in (0, 2 * n * len(settings["seeds"]) * len(settings["budgets"]))
        assert part["summary"] == lv.summarise(part["player_rows"], part["sampler_rows"])


def test_script_from_json_recomputes_summaries_and_doc_from_the_stored_rows(tmp_path):
    from helpers import script_main

    committed = json.loads(JSON.read_text())
    stale = lv.merge_part(committed, "one_row", {**committed["parts"]["held"], "summary": {},
                                                 "player_rows": committed["parts"]["held"]["player_rows"][:1],
                                                 "sampler_rows": []})
    json_path, doc = tmp_path / "lv.json", tmp_path / "page.md"
    json_path.write_text(json.dumps(stale))
    doc.write_text(f"{lv.DOC_START}\nold\n{lv.DOC_END}\n")
    assert script_main("bench_long_video.py")(["--from-json", "--json", str(json_path), "--doc", str(doc)]) == 0
    result = json.loads(json_path.read_text(), parse_constant=_no_nan)  # one row's undefined CI is null
    assert result["parts"]["one_row"]["summary"]["players"]["frames@384"]["top1"][1] is None
    assert {k: v for k, v in result["parts"].items() if k != "one_row"} == committed["parts"]
    assert lv.format_tables(result) in doc.read_text() and "| frames | 384 | 32.0 ± – |" in doc.read_text()


@pytest.mark.slow
def test_script_adds_a_part_and_regenerates_the_doc(tmp_path, capsys):
    from helpers import script_main

    main = script_main("bench_long_video.py")
    json_path, doc = tmp_path / "lv.json", tmp_path / "page.md"
    doc.write_text(f"intro\n{lv.DOC_START}\nold\n{lv.DOC_END}\nend\n")
    json_path.write_text(json.dumps({"parts": {"other": json.loads(JSON.read_text())["parts"]["held"]}}))
    argv = ["--name", "tiny", "--layout", "short_evidence", "--questions", "1", "--seeds", "0", "--frames", "16",
            "--budgets", "20", "--budget", "40", "--k", "2", "--candidates", "8", "--json", str(json_path),
            "--doc", str(doc)]
    assert main(argv) == 0
    result = json.loads(json_path.read_text())
    assert list(result["parts"]) == ["other", "tiny"]
    part = result["parts"]["tiny"]
    assert part["settings"]["scorer"] == "model" and part["settings"]["video_frames"] == [SHORT_TOTAL]
    assert [r["layout"] for r in part["player_rows"]] == ["frames", "shots"] and len(part["sampler_rows"]) == 1
    # budget 20 is below one permutation of the 16 frames + words: raised to the estimator's minimum
    assert part["player_rows"][0]["evaluations"] > 20
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n") and "old" not in text
    assert lv.format_tables(result) in text and "**tiny**" in text and "**other**" in text


def test_players_table_pairs_shots_with_frames_per_question_and_seed():
    from vqa_shap.measure.long_video import _paired_players

    rows = [{"qid": q, "seed": s, "budget": 64, "layout": layout, "top1": top1}
            for q in ("a", "b") for s in (0, 1)
            for layout, top1 in (("frames", 1.0), ("shots", 0.0 if q == "a" else 1.0))]
    rows.append({"qid": "c", "seed": 0, "budget": 64, "layout": "shots", "top1": 1.0})  # no frames twin: left out
    (line,) = [line for line in _paired_players(rows) if line]
    assert "-0.50 ± 0.92 at budget 64" in line  # diffs -1, -1, 0, 0: mean -0.5, t(3) 3.182 * 0.577 / 2
    assert _paired_players([r for r in rows if r["layout"] == "shots"]) == []


def test_runs_over_question_slices_combine_into_one_part():
    def run(first, qids, load):
        rows = [{"qid": q, "seed": 0, "layout": layout, "budget": 8, "players": 8, "top1": float(i % 2),
                 "evaluations": 9, "cost": 2.0, "seconds": 0.1} for i, q in enumerate(qids) for layout in ("frames", "shots")]
        return {"settings": {"layout": "held", "model": "demo-long", "n_questions": len(qids), "first_question": first,
                             "seeds": [0], "budgets": [8], "video_frames": [30] * len(qids),
                             "n_frames": 30, "estimator": "default"},
                "machine": {"threads": 1, "loadavg_before": [load] * 3, "loadavg_after": [load + 1] * 3, "seconds": load},
                "summary": {}, "player_rows": rows, "sampler_rows": []}

    a, b = run(0, ["q0", "q1"], 1.0), run(2, ["q2"], 2.0)
    joined = lv.combine_parts([b, a])  # any order: rows follow the questions
    assert [r["qid"] for r in joined["player_rows"]] == ["q0", "q0", "q1", "q1", "q2", "q2"]
    assert joined["settings"]["n_questions"] == 3 and joined["settings"]["first_question"] == 0
    assert joined["settings"]["video_frames"] == [30] * 3
    assert joined["machine"]["loadavg_before"] == [1.0] * 3 and joined["machine"]["loadavg_after"] == [3.0] * 3
    assert joined["machine"]["seconds"] == 2.0 and joined["machine"]["processes"] == 2
    assert joined["summary"] == lv.summarise(joined["player_rows"], [])
    assert "model `demo-long`" in lv.format_tables({"parts": {"x": joined}})
    with pytest.raises(ValueError, match="questions in two runs: q1"):
        lv.combine_parts([a, run(2, ["q1"], 2.0)])
    other = run(2, ["q2"], 2.0)
    other["settings"]["budgets"] = [16]
    with pytest.raises(ValueError, match="settings differ"):
        lv.combine_parts([a, other])


def test_players_table_shows_top1_per_frame_when_measured():
    rows = [{"qid": q, "seed": 0, "layout": layout, "budget": 64, "players": n, "top1": top1, "top1_per_frame": dense,
             "evaluations": 9, "cost": 2.0, "seconds": 0.1}
            for q in ("a", "b") for layout, n, top1, dense in (("frames", 64, 1.0, 1.0), ("shots", 8, 0.0, 1.0))]
    part = {"settings": {"layout": "short_evidence", "n_questions": 2, "seeds": [0], "n_frames": 64, "estimator": "x"},
            "machine": {"loadavg_before": [1.0] * 3}, "player_rows": rows, "sampler_rows": [],
            "summary": lv.summarise(rows, [])}
    text = lv.format_tables({"parts": {"p": part}})
    assert "| top-1 evidence | top-1 per frame | evaluations |" in text
    assert "| shots | 64 | 8.0 ± 0.0 | 0.00 ± 0.00 | 1.00 ± 0.00 | 9 ± 0 |" in text
    assert "top-1 evidence paired per question and seed: -1.00 ± 0.00 at budget 64" in text
    assert "top-1 per frame paired per question and seed: 0.00 ± 0.00 at budget 64" in text
    for row in rows:  # a part measured before top1_per_frame keeps its old table
        del row["top1_per_frame"]
    part["summary"] = lv.summarise(rows, [])
    assert "per frame" not in lv.format_tables({"parts": {"p": part}})


def test_demo_long_prose_states_the_committed_figures():
    """The figures docs/shots.md's prose quotes for the demo-long runs are the committed JSON's."""
    parts = json.loads(JSON.read_text())["parts"]
    prose = " ".join(DOC.read_text().split(lv.DOC_END)[1].split())  # line breaks -> spaces
    samplers = parts["short_evidence_samplers_demo_long"]
    s = samplers["summary"]["samplers"]
    assert (f"keep the 1–2-frame evidence shot for {s['uniform']['recall'][0]:.2f} of the questions and the model "
            f"answers {s['uniform']['correct'][0]:.2f}") in prose
    assert f"keeps it for {s['aks']['recall'][0]:.2f} and answers {s['aks']['correct'][0]:.2f}" in prose
    paired = {k: mean_ci([r[f"aks_{k}"] - r[f"uniform_{k}"] for r in samplers["sampler_rows"]])
              for k in ("recall", "correct")}
    assert f"+{lv._fmt(paired['recall'])} evidence kept and +{lv._fmt(paired['correct'])} correct" in prose

    def paired_line(part, key):
        rows = part["player_rows"]
        frames = {(r["qid"], r["seed"], r["budget"]): r[key] for r in rows if r["layout"] == "frames"}
        out = {}
        for r in rows:
            if r["layout"] == "shots":
                out.setdefault(r["budget"], []).append(r[key] - frames[(r["qid"], r["seed"], r["budget"])])
        return {b: lv._fmt(mean_ci(d)).replace("-", "−") for b, d in out.items()}

    held = parts["held_demo_long"]
    m = held["summary"]["players"]
    assert (f"{m['shots@64']['top1'][0]:.2f} vs {m['frames@64']['top1'][0]:.2f} at budget 64 and "
            f"{m['shots@320']['top1'][0]:.2f} vs {m['frames@320']['top1'][0]:.2f} at 320") in prose
    top1, dense = paired_line(held, "top1"), paired_line(held, "top1_per_frame")
    assert f"(paired {top1[64]} and {top1[320]}; per frame {dense[64]} and {dense[320]})" in prose
