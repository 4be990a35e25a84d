"""Frame-ranking agreement: parsing/repair, Shapley ranking, agreement statistics, Gemini request."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from vqa_shap.analysis.rankers import CONTENTS_TAIL, RANKERS, SYSTEM_INSTRUCTION, GeminiRanker, RankItem, get_ranker
from vqa_shap.analysis.agreement import (RankingError, parse_frame_ranking, per_frame_ranks, positionwise_spearman,
                                         rank_agreement, shapley_frame_ranking)
from vqa_shap.analysis.ranking import rank_questions, summarize_agreement
from vqa_shap.schema.records import Attribution, Feature, Question

# --------------------------------------------------------------------------------------------
# parsing and repair (the paper's rules, docs/analysis.md)


def test_parse_plain_ids():
    assert parse_frame_ranking("2, 0, 1", 3) == (2, 0, 1)


def test_parse_null_is_no_ranking():
    assert parse_frame_ranking(None, 4) is None


def test_parse_duplicates_keep_first_occurrence():
    assert parse_frame_ranking("3, 1, 3, 0, 1, 2", 4) == (3, 1, 0, 2)


def test_parse_gaps_appended_ascending():
    assert parse_frame_ranking("4, 1", 6) == (4, 1, 0, 2, 3, 5)


def test_parse_frame_prefix():
    assert parse_frame_ranking("frame_2, frame_0,frame_1", 4) == (2, 0, 1, 3)


def test_parse_out_of_range_kept_once():
    # 7 is out of range for n=3 and appears once: kept where it was; a repeated 9 keeps its first place
    assert parse_frame_ranking("1, 7, 9, 0, 9", 3) == (1, 7, 9, 0, 2)


def test_parse_trailing_comma_and_whitespace():
    assert parse_frame_ranking(" 1,\n0 ,", 2) == (1, 0)


def test_parse_garbage_is_a_clear_error():
    with pytest.raises(RankingError, match="cannot parse frame id 'three'"):
        parse_frame_ranking("1, three", 4)


# --------------------------------------------------------------------------------------------
# agreement statistics on hand-computed cases


def test_per_frame_ranks():
    assert per_frame_ranks((2, 0, 1), 3).tolist() == [1, 2, 0]
    # out-of-range ids are ignored for the per-frame ranks
    assert per_frame_ranks((1, 7, 0, 2), 3).tolist() == [1, 0, 2]


def test_identical_and_reversed_rankings():
    same = rank_agreement((3, 1, 0, 2), (3, 1, 0, 2), 4)
    assert same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    assert same.positionwise == pytest.approx(1.0)
    rev = rank_agreement((0, 1, 2, 3), (3, 2, 1, 0), 4)
    assert rev.spearman == pytest.approx(-1.0) and rev.kendall == pytest.approx(-1.0)
    assert rev.positionwise == pytest.approx(-1.0)


def test_agreement_on_hand_computed_cases():
    b = (0, 1, 2, 3)
    # a = (1, 2, 0, 3): per-frame ranks ra = [2, 0, 1, 3] vs rb = [0, 1, 2, 3]: d = [2, -1, -1, 0],
    # Σd² = 6 -> ρ = 1 - 6·6/(4·15) = 0.4. Kendall: discordant pairs (0,1), (0,2) of 6 -> (4-2)/6.
    # position-wise: the lists [1, 2, 0, 3] vs [0, 1, 2, 3]: d = [1, 1, -2, 0], Σd² = 6 -> 0.4.
    agr = rank_agreement((1, 2, 0, 3), b, 4)
    assert agr.spearman == pytest.approx(0.4)
    assert agr.kendall == pytest.approx(1 / 3)
    assert agr.positionwise == pytest.approx(0.4)


def test_textbook_and_positionwise_differ():
    # a = (1, 2, 0, 3), c = (3, 0, 1, 2)
    # per-frame: ra = [2, 0, 1, 3], rc = [1, 2, 3, 0]: d = [1, -2, -2, 3], Σd² = 18 -> 1 - 108/60 = -0.8
    # Kendall: (0,1) D, (0,2) D, (0,3) D, (1,2) C, (1,3) D, (2,3) D -> (1 - 5)/6
    # position-wise: [1, 2, 0, 3] vs [3, 0, 1, 2]: d = [-2, 2, -1, 1], Σd² = 10 -> 1 - 60/60 = 0
    agr = rank_agreement((1, 2, 0, 3), (3, 0, 1, 2), 4)
    assert agr.spearman == pytest.approx(-0.8)
    assert agr.kendall == pytest.approx(-4 / 6)
    assert agr.positionwise == pytest.approx(0.0)


def test_positionwise_aligns_on_index_and_drops_extras():
    # the repaired Gemini list may be longer (out-of-range ids): pandas keeps the common positions only
    assert positionwise_spearman((0, 1, 2, 9), (0, 1, 2)) == pytest.approx(1.0)


def test_single_frame_is_undefined():
    agr = rank_agreement((0,), (0,), 1)
    assert agr.spearman is None and agr.kendall is None and agr.positionwise is None


# --------------------------------------------------------------------------------------------
# rankers


def _attribution(qid="q1", shapley=None, answer=1, n_frames=4):
    feats = [Feature(f"frame_{i}", "video", input=0, time=float(i)) for i in range(n_frames)]
    feats += [Feature("What", "question"), Feature("?", "question"),
              Feature("Red", "answer", option=0), Feature("Blue", "answer", option=1)]
    if shapley is None:
        shapley = np.zeros((len(feats), 2))
        shapley[:n_frames, 1] = [0.1, -0.5, 0.1, 0.3][:n_frames]
        shapley[:n_frames, 0] = [9, 9, 9, 9][:n_frames]  # other column must not matter
    return Attribution(qid=qid, benchmark="egoschema", task="t", variant="original", model="m",
                       loader="llava_onevision", protocol="pollard2025", features=tuple(feats),
                       shapley=shapley, answer=answer)


def test_shapley_ranking_abs_descending_stable_ties():
    # |φ_GT| = [0.1, 0.5, 0.1, 0.3] -> 1, 3, then the tie 0, 2 in chronological order
    assert shapley_frame_ranking(_attribution()) == (1, 3, 0, 2)


def test_registry_members_all_load():
    assert RANKERS.names() == ["gemini", "random", "shapley", "uniform"]
    for name in RANKERS.names():
        assert RANKERS.get(name).name == name
    with pytest.raises(Exception, match="valid rankers: gemini, random, shapley, uniform"):
        RANKERS.get("oracle")


def test_uniform_and_random_rankers():
    item = RankItem("q1", 6)
    assert get_ranker("uniform").rank(item) == (0, 1, 2, 3, 4, 5)
    r1 = get_ranker("random", seed=3).rank(item)
    assert sorted(r1) == list(range(6))
    assert get_ranker("random", seed=3).rank(item) == r1  # seeded
    others = {get_ranker("random", seed=s).rank(item) for s in range(10)}
    assert len(others) > 1  # the seed matters


def test_rank_questions_shapley_vs_uniform_without_videos():
    attrs = [_attribution("q1"), _attribution("q2", shapley=np.zeros((8, 2)))]
    res = rank_questions(attrs, get_ranker("shapley"), get_ranker("uniform"), progress=False)
    assert [r.ranking for r in res] == [(1, 3, 0, 2), None]
    # q2: all-zero values rank nothing; frame order would pass for a perfect agreement with uniform
    assert res[1].spearman is None and "no information" in res[1].error
    # q1: ranks [2, 0, 3, 1] vs [0, 1, 2, 3]: Σd² = 4+1+1+4 = 10 -> 0
    assert res[0].spearman == pytest.approx(0.0)
    summary = summarize_agreement(res)
    assert summary.stats["spearman"]["mean"] == pytest.approx(0.0)
    assert summary.n_errors == 1


# --------------------------------------------------------------------------------------------
# Gemini: a fake client at the network boundary


class FakeModels:
    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def generate_content(self, *, model, contents, config):
        self.requests.append({"model": model, "contents": contents, "config": config})
        return types.SimpleNamespace(text=self.answers.pop(0))


class FakeClient:
    def __init__(self, answers):
        self.models = FakeModels(answers)


def _question(benchmark="egoschema"):
    return Question(qid="q1", benchmark=benchmark, task="t", question="what colour is THE cup",
                    options=("red", "  BLUE"), answer=1)


def _frames(n):
    return [np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(n)]


@pytest.fixture
def no_genai(monkeypatch):
    """Make sure google-genai is not importable (CI does not install it)."""
    monkeypatch.setitem(sys.modules, "google", None)
    monkeypatch.setitem(sys.modules, "google.genai", None)


def test_gemini_request_is_the_papers(tmp_path, no_genai):
    client = FakeClient(["frame_2, frame_0, frame_2"])
    ranker = GeminiRanker(client=client, cache_dir=tmp_path)
    item = RankItem("q1", 3, _attribution(n_frames=3), _question(), _frames(3))
    assert ranker.rank(item) == (2, 0, 1)
    (req,) = client.models.requests
    assert req["model"] == "gemini-2.5-pro"
    system = req["config"]["system_instruction"]  # the plain-dict fallback without google-genai
    assert system.splitlines() == [
        "You will be given frames from a video and a question with multiple-choice answer options.",
        "frame_0: {frame 0} ,... ,frame_n-1:{frame n-1}",
        "Question: {question}",
        "Options: {answer choices}",
        "You do not need to answer the question; return a comma separated list of frame ids in the order "
        "of their importance for answering the above question. Order the frame ids by importance, do not "
        "leave them in chronological order. Respond with exactly 3 frame ids, returning only this comma "
        "separated list and excluding all other textual output.",
    ]
    contents = req["contents"]
    assert contents[0:6:2] == ["frame_0: ", "frame_1: ", "frame_2: "]
    from PIL import Image

    images = contents[1:6:2]
    assert all(isinstance(im, Image.Image) for im in images)
    assert [np.asarray(im)[0, 0, 0] for im in images] == [0, 40, 80]  # frames in order
    # question and options normalised as parse_vqa (capitalize; option lower/strip/capitalize; '?')
    assert contents[6] == "Question:\nWhat colour is the cup?\nOptions:\n(A) Red\n(B) Blue\n"
    assert contents[7] == CONTENTS_TAIL
    assert len(contents) == 8
    # raw answer cached as {qid: text}; a rerun does not call the API again
    assert json.loads((tmp_path / "q1.json").read_text()) == {"q1": "frame_2, frame_0, frame_2"}
    again = GeminiRanker(client=FakeClient([]), cache_dir=tmp_path)
    assert again.rank(item) == (2, 0, 1) and again.requests == 0


def test_gemini_null_answer_is_cached_as_null_and_retried(tmp_path, no_genai):
    item = RankItem("q1", 2, None, _question(), _frames(2))
    first = GeminiRanker(client=FakeClient([None]), cache_dir=tmp_path)
    assert first.rank(item) is None
    assert json.loads((tmp_path / "q1.json").read_text()) == {"q1": None}
    second = GeminiRanker(client=FakeClient(["1,0"]), cache_dir=tmp_path)
    assert second.rank(item) == (1, 0) and second.requests == 1
    assert json.loads((tmp_path / "q1.json").read_text()) == {"q1": "1,0"}


def test_gemini_uses_genai_types_when_installed(monkeypatch):
    recorded = {}

    class GenerateContentConfig:
        def __init__(self, **kwargs):
            recorded.update(kwargs)

    class ThinkingConfig:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    fake_types = types.SimpleNamespace(GenerateContentConfig=GenerateContentConfig, ThinkingConfig=ThinkingConfig)
    genai = types.ModuleType("google.genai")
    genai.types = fake_types
    google = types.ModuleType("google")
    google.genai = genai
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.genai", genai)
    monkeypatch.setitem(sys.modules, "google.genai.types", fake_types)
    config = GeminiRanker(client=object(), thinking_budget=0).config(5)
    assert isinstance(config, GenerateContentConfig)
    assert recorded["system_instruction"] == SYSTEM_INSTRUCTION.format(n=5)
    assert recorded["thinking_config"].kwargs == {"thinking_budget": 0}


def test_gemini_without_key_is_a_clear_error_and_key_never_shown(monkeypatch, no_genai):
    for v in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(v, raising=False)
    ranker = GeminiRanker()
    with pytest.raises(RankingError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        ranker.client()
    monkeypatch.setenv("GEMINI_API_KEY", "sekret-key-123")
    with pytest.raises(RankingError) as err:
        ranker.client()  # google-genai missing: says how to install, never echoes the key
    assert "vqa-shap[gemini]" in str(err.value) and "sekret" not in str(err.value)


def test_gemini_hd_epic_tags_rewritten_with_stride(no_genai):
    from vqa_shap.protocol.base import FramePlan, FrameRef
    from vqa_shap.schema.records import VisualInput

    q = Question(qid="h1", benchmark="hd-epic", task="t", question="What moved at <TIME 00:00:12.599 video 1>?",
                 options=("A cup", "A pan"), answer=0,
                 inputs=(VisualInput("video", "P01/P01-x.mp4", label="video 1"),))
    plan = FramePlan((FrameRef(0, 0, 0.0), FrameRef(0, 6, 6.0)), stride=6.0)
    block = GeminiRanker(client=object()).question_block(q, plan)
    # 12 s / stride 6 -> 00:02; HD-EPIC keeps its case
    assert block == "Question:\nWhat moved at 00:02?\nOptions:\n(A) A cup\n(B) A pan\n"


# --------------------------------------------------------------------------------------------
# the rank command on an attributions folder (hand-made values, synthesised videos)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from test_report import write_attributions  # the report tests' hand-made attributions folder

    return write_attributions(tmp_path_factory.mktemp("rank"), seed=1)


def test_rank_cli_shapley_vs_random_without_videos(folders, tmp_path, capsys):
    from vqa_shap.cli import main

    out = tmp_path / "rank.json"
    assert main(["rank", str(folders["attributions"]), "--config", "tiny-random-llava_onevision__mini",
                 "--ranker", "random", "--against", "shapley", "--seed", "5", "--json", str(out),
                 "--plot", str(tmp_path / "rank.png"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "random vs shapley: 3 questions, 1 without a ranking" in printed
    data = json.loads(out.read_text())
    rows = {r["qid"]: r for r in data["questions"]}
    assert rows["broken"]["error"] and rows["broken"]["spearman"] is None
    for qid in ("ego_1", "mv_2"):
        attr = Attribution.from_row(next(r for r in folders["rows"] if r["qid"] == qid))
        assert tuple(rows[qid]["reference_ranking"]) == shapley_frame_ranking(attr)
        agr = rank_agreement(rows[qid]["ranking"], rows[qid]["reference_ranking"], 4)
        assert rows[qid]["spearman"] == pytest.approx(agr.spearman)
    assert (tmp_path / "rank.png").stat().st_size > 5000


def test_rank_cli_gemini_with_a_fake_client(folders, tmp_path, monkeypatch, capsys):
    """google-genai replaced at the network boundary: the request, the caching and the agreement."""
    from PIL import Image

    from vqa_shap.cli import main
    from vqa_shap.protocol import get_protocol

    shapley = {r["qid"]: shapley_frame_ranking(Attribution.from_row(r)) for r in folders["rows"] if not r["error"]}
    calls = []

    class Models:
        def generate_content(self, *, model, contents, config):
            calls.append({"model": model, "contents": contents, "config": config})
            n = sum(isinstance(c, Image.Image) for c in contents)
            qid = "ego_1" if "activity" in contents[2 * n] else "mv_2"
            # answer the reverse of the Shapley ranking, in the frame_<i> form, with one duplicate
            ids = list(reversed(shapley[qid]))
            return types.SimpleNamespace(text=", ".join(f"frame_{i}" for i in ids + ids[:1]))

    class Client:
        def __init__(self, api_key):
            self.api_key = api_key
            self.models = Models()

    genai = types.ModuleType("google.genai")
    genai.Client = Client
    google = types.ModuleType("google")
    google.genai = genai
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.genai", genai)
    # genai.types is absent: the ranker falls back to the plain-dict config
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "sekret-key-123")
    args = ["rank", str(folders["attributions"]), "--config", "tiny-random-llava_onevision__mini",
            "--questions", str(folders["questions"]), "--video-root", str(folders["videos"]),
            "--cache", str(tmp_path / "cache"), "--json", str(tmp_path / "rank.json"), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "sekret" not in printed and "Gemini requests made: 2" in printed
    assert [c["model"] for c in calls] == ["gemini-2.5-pro"] * 2
    # the frames sent are the frames the model saw: decoded with the protocol's plan
    proto = get_protocol("pollard2025")
    from test_report import _questions

    q = _questions()[0]
    plan = proto.plan_frames(q, folders["videos"], 4, loader_family="llava_onevision")
    frames = proto.load_frames(q, folders["videos"], plan)[0]
    sent = [np.asarray(c) for c in calls[0]["contents"] if isinstance(c, Image.Image)]
    assert len(sent) == 4 and all((a == b).all() for a, b in zip(sent, frames))
    assert calls[0]["contents"][8] == ("Question:\nWhat is the main activity of c in the video?\nOptions:\n"
                                       "(A) C washes the dishes\n(B) C cooks pasta\n(C) C reads a book\n")
    assert "Respond with exactly 4 frame ids" in calls[0]["config"]["system_instruction"]
    data = json.loads((tmp_path / "rank.json").read_text())
    for row in data["questions"]:
        if row["qid"] == "broken":
            assert row["error"]
            continue
        assert row["ranking"] == list(reversed(shapley[row["qid"]]))  # duplicate removed
        assert row["spearman"] == pytest.approx(-1) and row["kendall"] == pytest.approx(-1)
        # the paper's position-wise statistic correlates the id lists themselves (not -1 here)
        from scipy.stats import spearmanr

        assert row["positionwise"] == pytest.approx(spearmanr(row["ranking"], shapley[row["qid"]]).statistic)
    assert data["summary"]["spearman"]["mean"] == pytest.approx(-1)
    # a rerun reads the cached answers: no request
    calls.clear()
    assert main(args) == 0
    assert calls == [] and "Gemini requests made" not in capsys.readouterr().out


def test_rank_cli_gemini_without_a_key_fails_early(folders, tmp_path, monkeypatch, capsys):
    from vqa_shap.cli import main

    for v in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(v, raising=False)
    code = main(["rank", str(folders["attributions"]), "--config", "tiny-random-llava_onevision__mini",
                 "--questions", str(folders["questions"]), "--video-root", str(folders["videos"]),
                 "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert code == 2
    assert "needs an API key in GEMINI_API_KEY or GOOGLE_API_KEY" in capsys.readouterr().err
