"""Extra-answer variants of a benchmark, ``easy`` and ``hard_<N>`` (the paper's extra-answer study),
reproducible from a seed.

``dedupe=True`` (default) never repeats an option and widens a task pool that is too small
(:mod:`~vqa_shap.builders.variant_pools`); ``dedupe=False`` reproduces the paper's sampling. The
donors, pools per benchmark and ``option_origin``: docs/builders.md#variants-and-their-distractor-pools.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

from vqa_shap.errors import VqaShapError
from vqa_shap.schema.records import OptionOrigin, Question, known_answers
from vqa_shap.builders.variant_pools import UNKNOWN_ORIGIN, OptionTable, TaskPools, WiderPools, fallback_pool, normalise

#: The variant names :func:`make_variant` accepts: ``easy`` or ``hard_<N>`` (N ≥ 1).
VARIANT_PATTERN = re.compile(r"^(?:easy|hard_(?P<extra>[1-9][0-9]*))$")


def make_variant(questions: Sequence[Question], variant: str, *, seed: int = 0,
                 dedupe: bool = True) -> list[Question]:
    """The ``easy`` or ``hard_<N>`` variant of a benchmark's original questions.

    Args:
        questions: the original questions of one benchmark, in the order the generator visits them.
        variant: ``"easy"`` or ``"hard_<N>"``.
        seed: seed of ``numpy.random.default_rng``.
        dedupe: never add a distractor duplicating (after normalisation) an option already there
            (default); ``False`` reproduces the paper's behaviour.

    Returns:
        New questions, same qids and order, ``variant`` set, ``option_origin`` filled. Questions
        without a known answer are left out (a variant keeps the correct option in place, so it
        must know it) and counted in a logged warning; they serve as no donor either.

    Raises:
        VqaShapError: bad variant name, questions that are not one benchmark's originals, duplicate
            qids, or a pool too small for ``N`` distractors (names the question).
    """
    import numpy as np

    match = VARIANT_PATTERN.match(variant or "")
    if not match:
        raise VqaShapError(f"unknown variant {variant!r}: expected 'easy' or 'hard_<N>' (e.g. hard_5)")
    questions, _ = known_answers(list(questions), f"the {variant} variant keeps the correct option")
    if not questions:
        return []
    benchmarks = sorted({q.benchmark for q in questions})
    if len(benchmarks) > 1:
        raise VqaShapError(f"make_variant needs one benchmark at a time, got {benchmarks}")
    derived = next((q for q in questions if q.variant != "original"), None)
    if derived is not None:
        raise VqaShapError(f"make_variant needs original questions; {derived.qid!r} is variant {derived.variant!r}")
    qids = [q.qid for q in questions]
    if len(set(qids)) != len(qids):
        dup = next(q for i, q in enumerate(qids) if q in qids[:i])
        raise VqaShapError(f"make_variant: qid {dup!r} appears twice")
    rng = np.random.default_rng(seed)
    if variant == "easy":
        return _easy(questions, rng, dedupe)
    return _hard(questions, int(match.group("extra")), variant, rng, dedupe)


def _easy(questions: list[Question], rng, dedupe: bool) -> list[Question]:
    if len(questions) < 2:
        raise VqaShapError("the easy variant needs at least 2 questions (each takes another's distractors)")
    donors = list(range(len(questions)))
    while True:  # rejection-sampled derangement; at least one shuffle, as the paper
        rng.shuffle(donors)
        if all(d != i for i, d in enumerate(donors)):
            break
    out, unserved = [], []
    for i, question in enumerate(questions):
        if dedupe:
            filled = _easy_options(questions, donors, i)
            if filled is None:
                unserved.append((question.task, question.qid, 0))
                continue
            options, origins = filled
        else:  # the paper's zip: a slot the donor cannot fill keeps its own distractor
            donor = questions[donors[i]]
            options, origins = list(question.options), list(question.option_origin)
            slots = [k for k in range(question.n_options) if k != question.answer]
            supply = [k for k in range(donor.n_options) if k != donor.answer]
            for slot, k in zip(slots, supply):
                options[slot], origins[slot] = donor.options[k], donor.option_origin[k]
        out.append(dataclasses.replace(question, options=tuple(options), option_origin=tuple(origins),
                                       variant="easy"))
    if unserved:
        raise VqaShapError(_unserved_message("easy", unserved, len(questions), "distinct distractors"))
    return out


def _easy_options(questions: list[Question], donors: list[int], i: int):
    """Options and origins of question ``i`` in ``easy`` with dedupe, or None if it cannot be served.

    Distractor slots (ascending) take the donor's distractors in order, skipping any text already
    placed; when the donor runs short, the donors of the following positions (wrapping, never the
    question itself) serve in turn, and the question's own distractors come last.
    """
    question = questions[i]
    options, origins = list(question.options), list(question.option_origin)
    seen = {normalise(question.options[question.answer])}
    n = len(questions)

    def supply():
        for step in range(n):
            d = donors[(i + step) % n]
            if d == i:
                continue
            donor = questions[d]
            for k in range(donor.n_options):
                if k != donor.answer:
                    yield donor.options[k], donor.option_origin[k]
        for k in range(question.n_options):
            if k != question.answer:
                yield question.options[k], question.option_origin[k]

    source = supply()
    for slot in (k for k in range(question.n_options) if k != question.answer):
        for text, origin in source:
            if normalise(text) not in seen:
                options[slot], origins[slot] = text, origin
                seen.add(normalise(text))
                break
        else:
            return None
    return options, origins


def _unserved_message(variant: str, unserved: list[tuple[str, str, int]], n_questions: int, needed: str) -> str:
    """One message listing every question a variant cannot serve, grouped by task."""
    by_task: dict[str, list[str]] = {}
    for task, qid, size in unserved:
        by_task.setdefault(task, []).append(f"{qid!r} ({size})")
    groups = "; ".join(f"task {task!r}: {', '.join(items)}" for task, items in by_task.items())
    return (f"{variant}: {len(unserved)} question(s) cannot get {needed} even from the whole benchmark "
            f"(the pool comes from the {n_questions} questions given; candidates in brackets): {groups}")


def _hard(questions: list[Question], extra: int, variant: str, rng, dedupe: bool) -> list[Question]:
    from tqdm.auto import tqdm

    table = OptionTable(questions)
    pools = TaskPools(questions, table, dedupe)
    wider = WiderPools(questions, table) if dedupe else None
    out, unserved = [], []
    for i, question in enumerate(tqdm(questions, desc=variant, unit=" questions", disable=None, leave=False)):
        entries = pools.entries(i)
        pool = None
        if len(entries) < extra and question.benchmark == "hd-epic":
            pool = fallback_pool(question, [(table.texts[e], table.origins[e]) for e in entries], extra, dedupe)
        size = len(entries) if pool is None else len(pool)
        if size >= extra:
            chosen = rng.choice(size, extra, replace=False)
            if pool is None:
                added = [(table.texts[e], table.origins[e]) for e in entries[chosen]]
            else:
                added = [pool[c] for c in chosen]
            tiers = None
        elif wider is not None:
            narrow = pool if pool is not None else [(table.texts[e], table.origins[e]) for e in entries]
            added, tiers = wider.widen(i, narrow, extra, rng)
        else:
            added, tiers = None, None
        if added is None:
            unserved.append((question.task, question.qid, size if wider is None else tiers))
            continue
        out.append(_with_added(question, added, variant, rng, tiers))
    if unserved:
        raise VqaShapError(_unserved_message(variant, unserved, len(questions), f"{extra} distinct distractors"))
    return out


def _with_added(question: Question, added, variant: str, rng, tiers) -> Question:
    """``question`` with ``added`` ``(text, origin)`` pairs appended, then shuffled (answer tracked)."""
    options = list(question.options) + [t for t, _ in added]
    origins = list(question.option_origin) + [o for _, o in added]
    order = list(range(len(options)))
    rng.shuffle(order)
    extra = question.extra
    if tiers:  # which widened pool served how many distractors (only when the task pool was too small)
        extra = {**(extra if isinstance(extra, Mapping) else {}), "distractor_pools": tiers}
    return dataclasses.replace(
        question,
        options=tuple(options[k] for k in order),
        option_origin=tuple(origins[k] for k in order),
        answer=order.index(question.answer),
        variant=variant,
        extra=extra,
    )


def recover_origins(original: Question, variant: Question) -> tuple[OptionOrigin, ...]:
    """Best-effort ``option_origin`` of a variant read from a dump that does not record it.

    The correct option comes from the original's answer (checked by text). For ``hard_<N>`` every
    original option was kept, so each other original option is matched, in order, to the first
    unclaimed option with the same normalised text. Everything else — the donor distractors of
    ``easy``, the drawn ones of ``hard_<N>`` — has an unknown source: :data:`UNKNOWN_ORIGIN`.
    """
    origins = [UNKNOWN_ORIGIN] * variant.n_options
    if normalise(variant.options[variant.answer]) == normalise(original.options[original.answer]):
        origins[variant.answer] = OptionOrigin(original.qid, original.answer)
    if variant.variant.startswith("hard_"):
        free = [k for k in range(variant.n_options) if origins[k] == UNKNOWN_ORIGIN]
        for index, text in enumerate(original.options):
            if index == original.answer:
                continue
            for position in free:
                if normalise(variant.options[position]) == normalise(text):
                    origins[position] = OptionOrigin(original.qid, index)
                    free.remove(position)
                    break
    return tuple(origins)
