"""Distractor pools of the ``hard_<N>`` variants (see :mod:`vqa_shap.builders.variants`).

The per-benchmark task pools (the paper's rules), HD-EPIC's fallbacks, and the wider pools our
de-duplicated variants fall back to when a task pool is too small: the same answer type, generated
numbers, then the whole benchmark. Everything is indexed once over a flat table of all options.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from vqa_shap.schema.records import OptionOrigin, Question

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


class OptionTable:
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


class TaskPools:
    """The candidate pool of every question, from per-group arrays computed once.

    A pool lists flat option indices (see :class:`OptionTable`) of the donors' options in donor
    order then option order; ``dedupe`` keeps the first occurrence of each normalised text and drops
    the question's own texts; the paper's HD-EPIC de-duplication keeps the first occurrence of each
    exact text among the donors.
    """

    def __init__(self, questions: list[Question], table: OptionTable, dedupe: bool):
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


def fallback_pool(question: Question, pool: list[tuple[str, OptionOrigin]], extra: int,
                   dedupe: bool) -> list[tuple[str, OptionOrigin]]:
    """HD-EPIC's pools for types with too few other questions (the paper's rules, docs/builders.md)."""
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

    def __init__(self, table: OptionTable, entries):
        self.table, self.entries = table, entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, k: int):
        e = self.entries[k]
        return self.table.texts[e], self.table.origins[e]

    def __iter__(self):
        return (self[k] for k in range(len(self)))


class WiderPools:
    """The pools ``hard_<N>`` widens to (dedupe only) when a question's task pool is too small.

    In order: distinct options of every question whose task has the same answer type
    (:func:`task_answer_types`); for numbers,
    generated integers ``"0"``, ``"1"``, … (as the paper does for HD-EPIC counting); then distinct
    options of the whole benchmark. All of a narrower pool is taken before the next is drawn from.
    """

    def __init__(self, questions: list[Question], table: OptionTable):
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
