"""Extra-answer variants: the paper's (from its dumps) and ours (regenerated) keep the answer right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from vqa_shap.builders import get_builder
from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import OptionOrigin, Question
from vqa_shap.builders.variant_pools import UNKNOWN_ORIGIN, normalise
from vqa_shap.builders.variants import VARIANT_PATTERN, make_variant

HARD = ("hard_5", "hard_10", "hard_15", "hard_20")


@pytest.fixture(scope="module")
def paper(pollard_dir):
    return get_builder("pollard2025").build(pollard_dir).configs


def _q(qid, options, answer, benchmark="egoschema", task="t", **extra):
    return Question(qid=qid, benchmark=benchmark, task=task, question=f"{qid}?", options=tuple(options),
                    answer=answer, extra=extra)


def _assert_origins_consistent(variant_questions, originals, *, exact=True):
    by_qid = {q.qid: q for q in originals}
    for q in variant_questions:
        assert len(q.option_origin) == q.n_options
        for option, origin in zip(q.options, q.option_origin):
            if origin == UNKNOWN_ORIGIN:
                continue
            source = by_qid[origin.qid].options[origin.index]
            assert source == option if exact else normalise(source) == normalise(option), (q.qid, origin)


def _assert_answer_kept(variant_questions, originals):
    by_qid = {q.qid: q for q in originals}
    for q in variant_questions:
        original = by_qid[q.qid]
        assert normalise(q.options[q.answer]) == normalise(original.options[original.answer]), q.qid
        assert q.option_origin[q.answer] == OptionOrigin(q.qid, original.answer)


def test_variant_pattern():
    assert all(VARIANT_PATTERN.match(v) for v in ("easy", "hard_5", "hard_20", "hard_1"))
    assert not any(VARIANT_PATTERN.match(v) for v in ("original", "hard_0", "hard_", "hard5", "Easy", "hard_05"))


# --- the paper's variants, read from its dumps ----------------------------------------------------

def test_paper_variants_keep_correct_text_at_answer(paper):
    checked = 0
    for config, questions in paper.items():
        variant = questions[0].variant
        if variant == "original":
            continue
        originals = paper[questions[0].benchmark]
        _assert_answer_kept(questions, originals)
        _assert_origins_consistent(questions, originals, exact=False)  # the paper stores hard options normalised
        for q in questions:
            original = next(o for o in originals if o.qid == q.qid)
            extra = 0 if variant == "easy" else int(variant.split("_")[1])
            assert q.n_options == original.n_options + extra
            if variant != "easy":  # every original option is traced back to its own question
                assert sum(o.qid == q.qid for o in q.option_origin) == original.n_options
        checked += len(questions)
    assert checked == 12 * 5 * 3


# --- ours ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bench,variants", [
    ("egoschema", ("easy",) + HARD), ("hd-epic", ("easy",)), ("mvbench", ("easy",)), ("lvbench", ("easy",)),
])
@pytest.mark.parametrize("dedupe", [True, False])
def test_our_variants_keep_correct_text_at_answer(paper, bench, variants, dedupe):
    originals = paper[bench]
    for variant in variants:
        ours = make_variant(originals, variant, seed=0, dedupe=dedupe)
        assert [q.qid for q in ours] == [q.qid for q in originals]
        assert {q.variant for q in ours} == {variant}
        _assert_answer_kept(ours, originals)
        _assert_origins_consistent(ours, originals)
        for q, original in zip(ours, originals):
            assert q.options[q.answer] == original.options[original.answer]  # verbatim, not normalised
            assert q.question == original.question and q.inputs == original.inputs
        if dedupe:  # nothing added repeats an option (a source's own repeats stay: we never edit them)
            for q in ours:
                added = [normalise(o) for o, g in zip(q.options, q.option_origin) if g.qid != q.qid]
                own = {normalise(o) for o, g in zip(q.options, q.option_origin) if g.qid == q.qid}
                assert len(set(added)) == len(added) and not own & set(added), q.qid


def test_easy_is_a_derangement_of_distractors(paper):
    originals = paper["egoschema"]
    ours = make_variant(originals, "easy", seed=3, dedupe=False)
    donors = []
    for q, original in zip(ours, originals):
        assert q.answer == original.answer and q.n_options == original.n_options
        slots = [k for k in range(q.n_options) if k != q.answer]
        (donor,) = {q.option_origin[k].qid for k in slots}
        assert donor != q.qid
        donor_q = next(o for o in originals if o.qid == donor)
        assert [q.option_origin[k].index for k in slots] == [k for k in range(donor_q.n_options) if k != donor_q.answer]
        donors.append(donor)
    assert sorted(donors) == sorted(q.qid for q in originals)  # every question donates exactly once


def test_easy_and_hard_follow_the_papers_rng_sequence():
    # The paper's procedure (one numpy generator: per question a choice, then a shuffle) written out step by
    # step, on EgoSchema-style questions.
    qs = [_q(f"q{i}", [f"q{i} option {k}" for k in range(5)], i % 5) for i in range(9)]
    rng = np.random.default_rng(7)
    perm = [q.qid for q in qs]
    while any(p == q.qid for p, q in zip(perm, qs)):
        rng.shuffle(perm)
    ours = make_variant(qs, "easy", seed=7, dedupe=False)
    for q, donor_id, mine in zip(qs, perm, ours):
        donor = next(d for d in qs if d.qid == donor_id)
        options = list(q.options)
        for slot, k in zip([k for k in range(5) if k != q.answer], [k for k in range(5) if k != donor.answer]):
            options[slot] = donor.options[k]
        assert mine.options == tuple(options) and mine.answer == q.answer

    rng = np.random.default_rng(11)
    ours = make_variant(qs, "hard_6", seed=11, dedupe=False)
    for q, mine in zip(qs, ours):
        pool = [o for other in qs if other.qid != q.qid for o in other.options]
        options = list(q.options) + [str(s) for s in rng.choice(pool, 6, replace=False)]
        pairs = list(enumerate(options))
        rng.shuffle(pairs)
        assert mine.options == tuple(o for _, o in pairs)
        assert mine.answer == [i for i, _ in pairs].index(q.answer)


def test_hard_keeps_every_original_option_once(paper):
    originals = paper["egoschema"]
    for variant in HARD:
        n = int(variant.split("_")[1])
        for q, original in zip(make_variant(originals, variant, seed=1), originals):
            assert q.n_options == original.n_options + n
            own = sorted(o.index for o in q.option_origin if o.qid == q.qid)
            assert own == list(range(original.n_options))
            assert sorted(q.options) == sorted(list(original.options) + [
                o for o, origin in zip(q.options, q.option_origin) if origin.qid != q.qid])


def test_dedupe_switch():
    # Options that repeat across questions (up to case and spacing), as real benchmarks have.
    words = ["Yes", "no", "Maybe", "Sometimes", "yes ", "NO", "never", "  maybe", "Always", "often", "Rarely", "seldom"]
    qs = [_q(f"q{i}", [words[(i + k) % len(words)] for k in range(4)], i % 4) for i in range(12)]
    paper_like = make_variant(qs, "hard_4", seed=0, dedupe=False)
    assert any(len({normalise(o) for o in q.options}) < q.n_options for q in paper_like)
    deduped = make_variant(qs, "hard_4", seed=0, dedupe=True)
    for q in deduped:
        assert len({normalise(o) for o in q.options}) == q.n_options
    # easy: a donor distractor equal to this question's answer is skipped only with dedupe
    a = _q("a", ["red", "green", "blue"], 0)
    b = _q("b", ["Red ", "cyan", "pink", "grey"], 1)
    paper_easy = {q.qid: q for q in make_variant([a, b], "easy", dedupe=False)}
    assert paper_easy["a"].options == ("red", "Red ", "pink")
    ours_easy = {q.qid: q for q in make_variant([a, b], "easy", dedupe=True)}
    assert ours_easy["a"].options == ("red", "pink", "grey")
    assert ours_easy["a"].option_origin == (OptionOrigin("a", 0), OptionOrigin("b", 2), OptionOrigin("b", 3))


def test_dedupe_changes_nothing_without_duplicates():
    qs = [_q(f"q{i}", [f"distinct {i}.{k}" for k in range(5)], i % 5) for i in range(10)]
    for variant in ("easy", "hard_5", "hard_20"):
        assert make_variant(qs, variant, seed=4, dedupe=True) == make_variant(qs, variant, seed=4, dedupe=False)
    assert make_variant(qs, "hard_5", seed=4) != make_variant(qs, "hard_5", seed=5)


def _hd_epic_questions():
    """HD-EPIC-like questions whose pools hold many repeated strings (set order would matter)."""
    qs = []
    for i in range(16):
        spell = "Because {}." if i % 2 else "because {}. "  # repeats up to case and spacing
        qs.append(_q(f"fine_grained_why_recognition_{i}", [spell.format((i + k) % 20) for k in range(5)],
                     i % 5, benchmark="hd-epic", task="fine_grained_why_recognition"))
    for i in range(3):
        qs.append(_q(f"object_motion_object_movement_counting_{i}", [str((i + k) % 7) for k in range(5)],
                     i % 5, benchmark="hd-epic", task="object_motion_object_movement_counting"))
    for i, hours in enumerate([(1, 3, 5, 7, 9), (2, 4, 6, 8, 10)]):
        qs.append(_q(f"3d_perception_fixture_location_{i}", [f"{h} o'clock" for h in hours], 0,
                     benchmark="hd-epic", task="3d_perception_fixture_location"))
    return qs


_SCRIPT = """
import json, sys
from vqa_shap.schema.records import Question
from vqa_shap.builders.variants import make_variant
questions = [Question.from_row(row) for row in json.load(sys.stdin)]
out = {}
for dedupe in (True, False):
    for variant in ("easy", "hard_5", "hard_8"):
        out[f"{variant}-{dedupe}"] = [q.to_row() for q in make_variant(questions, variant, seed=2, dedupe=dedupe)]
print(json.dumps(out, sort_keys=True))
"""


def test_ours_identical_across_hash_seeds():
    rows = json.dumps([q.to_row() for q in _hd_epic_questions()])
    outputs = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", _SCRIPT], input=rows, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    in_process = json.loads(outputs[0])["hard_5-False"]
    assert in_process == [q.to_row() for q in make_variant(_hd_epic_questions(), "hard_5", seed=2, dedupe=False)]


def test_hd_epic_pools_and_fallbacks():
    qs = _hd_epic_questions()
    for dedupe in (True, False):
        ours = {q.qid: q for q in make_variant(qs, "hard_8", seed=0, dedupe=dedupe)}
        _assert_answer_kept(ours.values(), qs)
        _assert_origins_consistent(ours.values(), qs)
        why = ours["fine_grained_why_recognition_0"]  # pool: the other 'why' questions only
        assert {o.qid for o in why.option_origin} <= {q.qid for q in qs if "why" in q.qid}
        if dedupe:
            assert len({normalise(o) for o in why.options}) == why.n_options
        counting = ours["object_motion_object_movement_counting_0"]
        # the other two counting questions give at most 7 distinct numbers < 8: fall back to "0" … "12"
        added = [o for o, origin in zip(counting.options, counting.option_origin) if origin == UNKNOWN_ORIGIN]
        assert len(added) == 8 and set(added) <= {str(v) for v in range(13)}
        assert not set(added) & set(qs[8].options)  # minus the question's own options
        location = ours["3d_perception_fixture_location_0"]
        added = [o for o, origin in zip(location.options, location.option_origin) if origin.qid != location.qid]
        assert any(a.endswith(" degrees") for a in added) and len(added) == 8
        degrees = {f"{(h % 12) * 30} degrees" for h in (2, 4, 6, 8, 10)}
        assert {a for a in added if a.endswith("degrees")} <= degrees
        assert "1 o'clock" not in added  # the correct option was removed from the pool


def test_lvbench_and_mvbench_pools():
    lv = [_q(f"a_{i}", [f"a{i}-{k}" for k in range(4)], 0, benchmark="lvbench", task="a", question_type=["a"]) for i in range(3)]
    lv += [_q(f"b_{i}", [f"b{i}-{k}" for k in range(4)], 0, benchmark="lvbench", task="b", question_type=["b"]) for i in range(3)]
    lv += [_q("a_b_9", [f"ab-{k}" for k in range(4)], 0, benchmark="lvbench", task="a", question_type=["a", "b"])]
    ours = {q.qid: q for q in make_variant(lv, "hard_8", seed=0)}
    assert {o.qid for o in ours["a_0"].option_origin} <= {"a_0", "a_1", "a_2", "a_b_9"}  # shares type "a"
    assert {o.qid for o in ours["a_b_9"].option_origin} - {"a_b_9"} <= {q.qid for q in lv}
    assert len(ours["a_b_9"].options) == 12
    with pytest.raises(VqaShapError, match="'a_0' \\(12\\)"):  # paper sampling: a_1, a_2, a_b_9: 3 × 4 options
        make_variant(lv, "hard_13", seed=0, dedupe=False)
    widened = {q.qid: q for q in make_variant(lv, "hard_13", seed=0)}["a_0"]  # ours widens the pool
    assert widened.extra["distractor_pools"] == {"task": 12, "answer_type": 1}
    assert sum(o.qid.startswith("b_") for o in widened.option_origin) == 1
    mv = [_q(f"{task}_{i}", [f"{task}{i}-{k}" for k in range(3)], 1, benchmark="mvbench", task=task)
          for task in ("action_count", "moving_count") for i in range(4)]
    for q in make_variant(mv, "hard_9", seed=0):
        assert {o.qid.rsplit("_", 1)[0] for o in q.option_origin} == {q.task}


def test_errors_are_clear():
    qs = [_q("x", ["a", "b"], 0), _q("y", ["c", "d"], 1)]
    with pytest.raises(VqaShapError, match="unknown variant 'harder'"):
        make_variant(qs, "harder")
    with pytest.raises(VqaShapError, match="one benchmark"):
        make_variant(qs + [_q("z", ["e", "f"], 0, benchmark="lvbench")], "easy")
    with pytest.raises(VqaShapError, match="original"):
        make_variant(make_variant(qs, "easy"), "easy")
    with pytest.raises(VqaShapError, match=r"2 question\(s\) cannot get 3 distinct.*task 't': 'x' \(2\), 'y' \(2\)"):
        make_variant(qs, "hard_3")
    with pytest.raises(VqaShapError, match="at least 2 questions"):
        make_variant(qs[:1], "easy")
    with pytest.raises(VqaShapError, match="appears twice"):
        make_variant([qs[0], qs[0]], "easy")
    assert make_variant([], "easy") == []
    counts = Counter(q.option_origin[q.answer] for q in make_variant(qs, "hard_2"))
    assert counts == {OptionOrigin("x", 0): 1, OptionOrigin("y", 1): 1}


def _reference_hard(questions, extra, seed, dedupe):
    """hard_N written plainly from the paper's procedure (pools rebuilt per question, no index tricks)."""
    rng = np.random.default_rng(seed)

    def types(q):
        return set(q.extra.get("question_type") or [q.task])

    out = []
    for q in questions:
        if q.benchmark == "hd-epic":
            donors = [d for d in questions if d.qid != q.qid and q.task in d.qid]
        elif q.benchmark == "lvbench":
            donors = [d for d in questions if d.qid != q.qid and types(d) & types(q)]
        elif q.benchmark == "mvbench":
            donors = [d for d in questions if d.qid != q.qid and d.task == q.task]
        else:
            donors = [d for d in questions if d.qid != q.qid]
        pool = [(o, OptionOrigin(d.qid, k)) for d in donors for k, o in enumerate(d.options)]
        if dedupe or q.benchmark == "hd-epic":
            key = normalise if dedupe else (lambda s: s)
            seen = {key(o) for o in q.options} if dedupe else set()
            unique = []
            for option, origin in pool:
                if key(option) not in seen:
                    seen.add(key(option))
                    unique.append((option, origin))
            pool = unique
        added = [pool[c] for c in rng.choice(len(pool), extra, replace=False)]
        pairs = list(enumerate(zip(list(q.options) + [o for o, _ in added],
                                   list(q.option_origin) + [g for _, g in added])))
        rng.shuffle(pairs)
        out.append((tuple(o for _, (o, _) in pairs), tuple(g for _, (_, g) in pairs),
                    [i for i, _ in pairs].index(q.answer)))
    return out


def _repetitive(benchmark, n_groups=3, per_group=6):
    """Questions whose options repeat within and across groups (exactly and up to case)."""
    texts = ["red", "Red", "blue", "green ", "GREEN", "pink", "grey", "black", "white", "gold", "teal"]
    qs = []
    for g in range(n_groups):
        for i in range(per_group):
            options = [texts[(g * 2 + i * 3 + k * 5) % len(texts)] for k in range(4)] + [f"g{g} q{i}"]
            task = f"group_{g}_type"
            extra = {"question_type": [task] + ([f"group_{(g + 1) % n_groups}_type"] if i == 0 else [])}
            qs.append(_q(f"{task}_{i}", options, (g + i) % 5, benchmark=benchmark, task=task, **extra))
    return qs


@pytest.mark.parametrize("benchmark", ["egoschema", "hd-epic", "lvbench", "mvbench"])
@pytest.mark.parametrize("dedupe", [True, False])
def test_hard_pools_equal_plain_reference(benchmark, dedupe):
    qs = _repetitive(benchmark)
    for seed in (0, 1):
        ours = make_variant(qs, "hard_4", seed=seed, dedupe=dedupe)
        assert [(q.options, q.option_origin, q.answer) for q in ours] == _reference_hard(qs, 4, seed, dedupe)
