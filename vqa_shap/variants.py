"""Extra-answer variants of a benchmark: ``easy`` and ``hard_<N>`` (SEED_SPEC §2), reproducibly.

* ``easy``: the questions are paired with a rejection-sampled derangement of themselves
  (``numpy.random.default_rng(seed)``, shuffled until no question is its own donor, at least once);
  each question's distractor slots (ascending, answer excluded) receive its donor's distractors in
  order. The correct option and its index are unchanged; a slot the donor cannot fill keeps its own
  distractor (the paper's ``zip``).
* ``hard_<N>``: ``N`` distractors drawn with ``rng.choice(pool, N, replace=False)`` from a pool of other
  questions' options are appended, then ``(original index, option)`` pairs are shuffled with the same
  generator and the answer index follows its option. The pool per benchmark:

  - ``egoschema`` (and any benchmark without a rule): every other question's options;
  - ``hd-epic``: other questions whose qid contains this question's type, de-duplicated keeping the
    first occurrence (the paper de-duplicates with ``list(set(...))``, whose order depends on
    ``PYTHONHASHSEED``; ours is the same set in a fixed order). When that pool is smaller than ``N``:
    the counting types use the strings ``"0" … str(N + 4)`` minus the question's own options, and
    ``3d_perception_fixture_location`` drops the correct option and adds ``"<(h % 12) * 30> degrees"``
    for every remaining ``"h o'clock"``;
  - ``lvbench``: other questions sharing at least one question type (``extra["question_type"]``);
  - ``mvbench`` (the paper has no MVBench variants; our choice): other questions of the same task.

  One generator is consumed sequentially: per question one ``choice`` then one ``shuffle``.

``dedupe=True`` (our default) never adds a distractor that duplicates, after normalisation (the paper's
``lower().strip()`` plus whitespace collapsing), an option already present or already added: the pool
is de-duplicated and stripped of the question's own options before drawing, and ``easy`` skips a
donor distractor that would repeat one (a slot the donor then cannot fill keeps the question's own
distractor, as without dedupe). A source question's own repeated options are never edited.
``dedupe=False`` reproduces the paper, duplicates included.

Options are copied verbatim (stored text is never normalised); qids are unchanged; ``option_origin``
records the ``(qid, index)`` every option came from, or ``("", -1)`` (:data:`UNKNOWN_ORIGIN`) for a
generated string such as ``"3"`` or ``"90 degrees"`` that belongs to no question.
Pools come from the questions passed in, so variants of a subset draw from that subset only.
Everything is deterministic given ``seed`` (no set or hash order is involved).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

from vqa_shap.errors import VqaShapError
from vqa_shap.schema import OptionOrigin, Question

#: The variant names :func:`make_variant` accepts: ``easy`` or ``hard_<N>`` (N ≥ 1).
VARIANT_PATTERN = re.compile(r"^(?:easy|hard_(?P<extra>[1-9][0-9]*))$")
#: The origin of an option that comes from no question (a generated fallback string).
UNKNOWN_ORIGIN = OptionOrigin("", -1)
#: HD-EPIC types whose small pools fall back to number strings.
COUNTING_TYPES = ("object_motion_object_movement_counting", "3d_perception_fixture_interaction_counting")
#: HD-EPIC type whose small pools fall back to angles.
FIXTURE_LOCATION_TYPE = "3d_perception_fixture_location"
_CLOCK = re.compile(r"^(\d+) o'clock$")


def normalise(text: str) -> str:
    """The comparison key of an option: lower-cased, stripped, inner whitespace collapsed."""
    return " ".join(text.lower().split())


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
        New questions, same qids and order, ``variant`` set, ``option_origin`` filled.

    Raises:
        VqaShapError: bad variant name, questions that are not one benchmark's originals, duplicate
            qids, or a pool too small for ``N`` distractors (names the question).
    """
    import numpy as np

    match = VARIANT_PATTERN.match(variant or "")
    if not match:
        raise VqaShapError(f"unknown variant {variant!r}: expected 'easy' or 'hard_<N>' (e.g. hard_5)")
    questions = list(questions)
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


class _OptionTable:
    """All options of all questions, flat, with integer keys for fast pool building."""

    def __init__(self, questions: list[Question]):
        import numpy as np

        counts = np.array([q.n_options for q in questions], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = counts
        self.question = np.repeat(np.arange(len(questions), dtype=np.int64), counts)
        self.texts = [o for q in questions for o in q.options]
        self.origins = [o for q in questions for o in q.option_origin]
        self.exact = self._ids(self.texts)
        self.norm = self._ids([normalise(t) for t in self.texts])

    @staticmethod
    def _ids(keys: list[str]):
        import numpy as np

        index: dict[str, int] = {}
        return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)

    def entries(self, donors):
        """Flat option indices of ``donors``' options, donor by donor, in option order."""
        import numpy as np

        starts, lengths = self.offsets[donors], self.counts[donors]
        before = np.cumsum(lengths) - lengths
        return np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _first_occurrences(entries, keys):
    import numpy as np

    _, first = np.unique(keys[entries], return_index=True)
    return entries[np.sort(first)]


def _groups(questions: list[Question]) -> tuple[list, dict]:
    """Each question's donor group key, and key -> sorted indices of the group's questions.

    A question always belongs to its own group; its donors are the group minus itself.
    """
    import numpy as np

    benchmark = questions[0].benchmark
    if benchmark == "hd-epic":  # the paper's substring match of the type in the qid
        keys = [q.task for q in questions]
        members = {t: [j for j, q in enumerate(questions) if t in q.qid] for t in dict.fromkeys(keys)}
    elif benchmark == "mvbench":
        keys = [q.task for q in questions]
        members = {t: [j for j, q in enumerate(questions) if q.task == t] for t in dict.fromkeys(keys)}
    elif benchmark == "lvbench":  # questions sharing at least one question type
        types = [tuple(_question_types(q)) for q in questions]
        by_type: dict[str, list[int]] = {}
        for j, ts in enumerate(types):
            for t in ts:
                by_type.setdefault(t, []).append(j)
        keys = types
        members = {ts: sorted({j for t in ts for j in by_type[t]}) for ts in dict.fromkeys(types)}
    else:
        keys = [None] * len(questions)
        members = {None: list(range(len(questions)))}
    return keys, {k: np.array(v, dtype=np.int64) for k, v in members.items()}


class _Pools:
    """The candidate pool of every question, from per-group arrays computed once.

    A pool lists flat option indices (see :class:`_OptionTable`) of the donors' options in donor
    order then option order; ``dedupe`` keeps the first occurrence of each normalised text and drops
    the question's own texts; the paper's HD-EPIC de-duplication keeps the first occurrence of each
    exact text among the donors.
    """

    def __init__(self, questions: list[Question], table: _OptionTable, dedupe: bool):
        self.table, self.dedupe = table, dedupe
        self.exact_set = questions[0].benchmark == "hd-epic"  # the paper de-duplicates HD-EPIC pools only
        self.group_of, self.members = _groups(questions)
        self._cache: dict = {}

    def _group(self, key):
        if key not in self._cache:
            entries = self.table.entries(self.members[key])
            keys = self.table.norm if self.dedupe else self.table.exact
            first = _first_occurrences(entries, keys) if self.dedupe or self.exact_set else None
            self._cache[key] = (entries, first)
        return self._cache[key]

    def entries(self, i: int):
        import numpy as np

        table = self.table
        entries, first = self._group(self.group_of[i])
        if self.dedupe:  # a key not among the question's own has its first occurrence in a donor
            own = table.norm[table.offsets[i]:table.offsets[i] + table.counts[i]]
            return first[~np.isin(table.norm[first], own)]
        if not self.exact_set:
            return entries[table.question[entries] != i]
        mine = table.question[first] == i
        if not mine.any():
            return first
        # texts first seen in this question: their first occurrence among the donors, if any
        others = entries[table.question[entries] != i]
        later = [others[table.exact[others] == k][:1] for k in table.exact[first[mine]]]
        return np.sort(np.concatenate([first[~mine], *later]))


def _question_types(question: Question) -> list[str]:
    types = question.extra.get("question_type") if isinstance(question.extra, Mapping) else None
    if isinstance(types, list) and types:
        return [str(t) for t in types]
    return [question.task]


def _fallback_pool(question: Question, pool: list[tuple[str, OptionOrigin]], extra: int,
                   dedupe: bool) -> list[tuple[str, OptionOrigin]]:
    """HD-EPIC's pools for types with too few other questions (SEED_SPEC §2)."""
    own = {normalise(o) if dedupe else o for o in question.options}
    key = normalise if dedupe else (lambda s: s)
    if question.task in COUNTING_TYPES:
        return [(str(v), UNKNOWN_ORIGIN) for v in range(extra + 5) if key(str(v)) not in own]
    if question.task == FIXTURE_LOCATION_TYPE:
        correct = question.options[question.answer]
        kept = [(t, o) for t, o in pool if key(t) != key(correct)]
        angles = []
        for text, _ in kept:
            clock = _CLOCK.match(text.strip())
            if clock:
                angles.append((f"{(int(clock.group(1)) % 12) * 30} degrees", UNKNOWN_ORIGIN))
        if dedupe:
            seen = {key(t) for t, _ in kept} | own
            unique = []
            for text, origin in angles:
                if key(text) not in seen:
                    seen.add(key(text))
                    unique.append((text, origin))
            angles = unique
        return kept + angles
    return pool


def _hard(questions: list[Question], extra: int, variant: str, rng, dedupe: bool) -> list[Question]:
    from tqdm.auto import tqdm

    table = _OptionTable(questions)
    pools = _Pools(questions, table, dedupe)
    wider = _WiderPools(questions, table) if dedupe else None
    out, unserved = [], []
    for i, question in enumerate(tqdm(questions, desc=variant, unit=" questions", disable=None, leave=False)):
        entries = pools.entries(i)
        pool = None
        if len(entries) < extra and question.benchmark == "hd-epic":
            pool = _fallback_pool(question, [(table.texts[e], table.origins[e]) for e in entries], extra, dedupe)
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


_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_YES_NO = frozenset({"yes", "no", "not sure"})
_DIRECTION = re.compile(r"\b(?:left|right|forward|backward|backwards|stop|stationary|clockwise|"
                        r"counterclockwise|north|south|east|west)\b")


def answer_type(options: Sequence[str]) -> str:
    """The answer type of a set of options: ``number``, ``yes/no``, ``direction`` or ``text``.

    A type other than ``text`` needs every option to have it (numbers; yes / no / not sure; short
    phrases naming a direction such as "Turn left and move forward" or "The object is stationary.").
    """
    keys = [normalise(o).rstrip(".") for o in options]
    if all(_NUMBER.match(k) for k in keys):
        return "number"
    if all(k in _YES_NO for k in keys):
        return "yes/no"
    if all(_DIRECTION.search(k) and len(k.split()) <= 6 for k in keys):
        return "direction"
    return "text"


def task_answer_types(questions: Sequence[Question]) -> dict[str, str]:
    """Task -> the :func:`answer_type` of all its questions' options together."""
    by_task: dict[str, list[str]] = {}
    for q in questions:
        by_task.setdefault(q.task, []).extend(q.options)
    return {task: answer_type(options) for task, options in by_task.items()}


class _LazyPairs:
    """``(text, origin)`` of flat option indices, built only for the options drawn."""

    def __init__(self, table: _OptionTable, entries):
        self.table, self.entries = table, entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, k: int):
        e = self.entries[k]
        return self.table.texts[e], self.table.origins[e]

    def __iter__(self):
        return (self[k] for k in range(len(self)))


class _WiderPools:
    """The pools ``hard_<N>`` widens to (dedupe only) when a question's task pool is too small.

    In order: distinct options of every question whose task has the same answer type
    (:func:`task_answer_types`); for numbers,
    generated integers ``"0"``, ``"1"``, … (as the paper does for HD-EPIC counting); then distinct
    options of the whole benchmark. All of a narrower pool is taken before the next is drawn from.
    """

    def __init__(self, questions: list[Question], table: _OptionTable):
        import numpy as np

        self.table = table
        by_task = task_answer_types(questions)
        self.types = [by_task[q.task] for q in questions]
        members = {t: np.array([j for j, u in enumerate(self.types) if u == t], dtype=np.int64)
                   for t in dict.fromkeys(self.types)}
        self.first = {t: _first_occurrences(table.entries(m), table.norm) for t, m in members.items()}
        self.first[None] = _first_occurrences(table.entries(np.arange(len(questions))), table.norm)
        self.norm_id = {normalise(table.texts[e]): int(table.norm[e]) for e in self.first[None]}

    def widen(self, i: int, narrow: list, extra: int, rng):
        """``(added, tiers)``: ``extra`` distractors for question ``i``, or ``(None, candidates)``."""
        table = self.table
        seen = {normalise(t) for t, _ in narrow} | {normalise(table.texts[table.offsets[i] + k])
                                                    for k in range(int(table.counts[i]))}
        added, tiers = list(narrow), {"task": len(narrow)}
        for tier in ("answer_type", "generated", "benchmark"):
            if tier == "generated":
                candidates = self._numbers(seen, extra - len(added)) if self.types[i] == "number" else []
            else:
                import numpy as np

                first = self.first[self.types[i] if tier == "answer_type" else None]
                seen_ids = [self.norm_id[k] for k in seen if k in self.norm_id]
                candidates = _LazyPairs(table, first[~np.isin(table.norm[first], seen_ids)])
            need = extra - len(added)
            if len(candidates) >= need:
                chosen = rng.choice(len(candidates), need, replace=False)
                added += [candidates[int(c)] for c in chosen]
                tiers[tier] = need
                return added, {k: v for k, v in tiers.items() if v}
            added += list(candidates)
            tiers[tier] = len(candidates)
            seen.update(normalise(t) for t, _ in candidates)
        return None, len(added)

    @staticmethod
    def _numbers(seen: set, count: int) -> list:
        out, value = [], 0
        while len(out) < count:
            if str(value) not in seen:
                out.append((str(value), UNKNOWN_ORIGIN))
            value += 1
        return out


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
