"""Conversion between attribution rows and the paper's per-question Shapley CSVs (format: docs/schemas.md).

:func:`attribution_from_csv` rebuilds an :class:`~vqa_shap.schema.records.Attribution` from a CSV and its
question (features checked against the CSV); :func:`attribution_to_csv` / :func:`write_csv` go back,
byte for byte (float64, shortest round-trip repr). What an import cannot know (``value_full``,
``value_empty``, the prediction of a generative model): docs/analysis.md#the-papers-published-tables.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vqa_shap.errors import RecordError, VqaShapError
from vqa_shap.schema.records import Attribution, Feature, Question, require_answer

ELEMENT_COLUMN = "element"
GROUND_TRUTH_SUFFIX = ": Ground Truth"
FRAME_NAME = re.compile(r"frame_\d+")
#: ``<q_uid>_<budget>_<mode>.csv`` — q_uids contain underscores, so match from the right.
CSV_NAME = re.compile(r"^(?P<qid>.+)_(?P<budget>\d+)_(?P<mode>[a-z_]+?)\.csv$")

#: The paper's estimator settings (shap's PermutationExplainer, 5000 evaluations, seed 0).
PAPER_ESTIMATOR = "shap-permutation"
PAPER_BUDGET = 5000
PAPER_SEED = 0
#: Paper models whose prediction the CSV determines (argmax of column sums); matched
#: case-insensitively as a substring of the model name.
SUM_DETERMINED_MODELS = ("frozenbilm", "internvideo")
#: ``loader`` column of imported rows.
DEFAULT_LOADER = "pollard2025-csv"
#: Relative tolerance under which two column sums count as tied.
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PaperTable:
    """One parsed paper CSV.

    Attributes:
        path: where it was read from.
        elements: the ``element`` column (feature names), verbatim.
        shapley: F×K float64 values, columns in option order.
        answer: index of the ``": Ground Truth"`` column.
    """

    path: str
    elements: tuple[str, ...]
    shapley: np.ndarray
    answer: int

    @property
    def n_frames(self) -> int:
        """Number of leading ``frame_<i>`` rows."""
        n = 0
        for name in self.elements:
            if not FRAME_NAME.fullmatch(name):
                break
            n += 1
        return n


def option_letters(n_options: int) -> list[str]:
    """``A``, ``B``, … for ``n_options`` options (the paper's column names)."""
    if not 0 < n_options <= 26:
        raise ValueError(f"the paper's CSV format names at most 26 options, got {n_options}")
    return [chr(ord("A") + k) for k in range(n_options)]


def csv_filename(qid: str, budget: int = PAPER_BUDGET, mode: str = "joint") -> str:
    """The paper's file name of one question's table: ``<qid>_<budget>_<mode>.csv``."""
    return f"{qid}_{budget}_{mode}.csv"


def parse_csv_filename(path: str | Path) -> tuple[str, int, str]:
    """``(qid, budget, mode)`` from a paper CSV file name.

    Raises:
        VqaShapError: the name does not follow ``<qid>_<budget>_<mode>.csv``.
    """
    match = CSV_NAME.match(Path(path).name)
    if not match:
        raise VqaShapError(f"{path}: not a paper Shapley CSV name (<q_uid>_<budget>_<mode>.csv)")
    return match["qid"], int(match["budget"]), match["mode"]


def read_paper_csv(path: str | Path, record: str | None = None) -> PaperTable:
    """Parse and validate one paper CSV (element names kept verbatim, e.g. ``None``, ``NA``).

    Args:
        path: the CSV file.
        record: the question id used in error messages (default: from the file name).

    Raises:
        RecordError: bad header (names ``field="header"``), non-numeric values, ragged rows.
    """
    path = Path(path)
    if record is None:
        match = CSV_NAME.match(path.name)
        record = match["qid"] if match else path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(str(path), record, "file", f"not UTF-8 text ({exc})") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise RecordError(str(path), record, "header", "the file is empty")
    header, body = rows[0], rows[1:]
    if len(header) < 2 or header[0] != ELEMENT_COLUMN:
        raise RecordError(str(path), record, "header",
                          f"expected 'element' then one column per option, got {header}")
    n_options = len(header) - 1
    letters = option_letters(n_options) if n_options <= 26 else []
    answers = [k for k, name in enumerate(header[1:]) if name.endswith(GROUND_TRUTH_SUFFIX)]
    bare = [name[: -len(GROUND_TRUTH_SUFFIX)] if name.endswith(GROUND_TRUTH_SUFFIX) else name
            for name in header[1:]]
    if bare != letters or len(answers) != 1:
        raise RecordError(str(path), record, "header",
                          f"option columns must be A, B, … with exactly one ': Ground Truth', got {header[1:]}")
    values = np.empty((len(body), n_options), dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) != n_options + 1:
            raise RecordError(str(path), record, f"row {i + 2}",
                              f"expected {n_options + 1} cells, got {len(row)}")
        try:
            values[i] = [float(v) for v in row[1:]]
        except ValueError as exc:
            raise RecordError(str(path), record, f"row {i + 2} ({row[0]!r})", str(exc)) from None
        bad = [k for k, v in enumerate(values[i]) if not math.isfinite(v)]
        if bad:  # float() reads "nan", "inf", "-Infinity": not Shapley values of any model
            raise RecordError(str(path), record, f"row {i + 2} ({row[0]!r})",
                              f"column {header[bad[0] + 1]!r} holds {row[bad[0] + 1]!r}, not a finite number")
    values.setflags(write=False)
    return PaperTable(str(path), tuple(r[0] for r in body), values, answers[0])


def prediction_from_sums(shapley: np.ndarray) -> int:
    """argmax_c Σ_i φ[i, c], near-ties (≤ 1e-9·max(1, |max|)) resolved to the lowest index."""
    sums = np.asarray(shapley, dtype=np.float64).sum(axis=0)
    best = sums.max()
    tol = TIE_TOLERANCE * max(1.0, abs(best))
    return int(np.flatnonzero(sums >= best - tol)[0])


def sums_determine_prediction(model: str) -> bool:
    """Whether the paper CSV alone gives ``model``'s prediction (FrozenBiLM, InternVideo)."""
    name = model.lower()
    return any(tag in name for tag in SUM_DETERMINED_MODELS)


def paper_evaluations(n_features: int, budget: int = PAPER_BUDGET) -> int:
    """Model evaluations shap's PermutationExplainer spends: P·(2F+1), P = budget // (2F+1)."""
    per_permutation = 2 * n_features + 1
    return (budget // per_permutation) * per_permutation


def attribution_from_csv(
    path: str | Path,
    question: Question,
    protocol: Any,
    model: str,
    *,
    loader: str | None = None,
    derive_prediction: bool | None = None,
    estimator: str = PAPER_ESTIMATOR,
    budget: int = PAPER_BUDGET,
    seed: int | None = PAPER_SEED,
    version: str | None = None,
) -> Attribution:
    """Import one paper CSV as an attribution row.

    Args:
        path: the CSV (``<q_uid>_<n>_joint.csv``).
        question: the question it explains (same qid, options and answer).
        protocol: a protocol object (``vqa_shap.protocol.get_protocol("pollard2025")``) whose
            ``text_features(question)`` gives the expected text rows.
        model: model name stored in the row (e.g. ``"frozenbilm"``).
        loader: loader column (default :data:`DEFAULT_LOADER`: imported, not run).
        derive_prediction: take the prediction from the column sums; ``None`` decides by model
            (FrozenBiLM/InternVideo yes, others no — see the module docstring).
        estimator, budget, seed: how the paper estimated φ.
        version: version column (default: this vqa-shap's version).

    Raises:
        RecordError: the CSV does not match the question (text rows differ from the protocol's
            names, frame rows out of order, option count or ground truth differ); the message
            names the CSV, the qid and the field.
    """
    from vqa_shap import __version__

    path = Path(path)
    table = read_paper_csv(path, record=question.qid)
    frame_names = table.elements[:table.n_frames]
    text = _checked_text_features(path, table, question, protocol)
    frame_input = 0 if len(question.inputs) == 1 else -1
    features = tuple(Feature(name, "video", input=frame_input) for name in frame_names) + text
    if derive_prediction is None:
        derive_prediction = sums_determine_prediction(model)
    return Attribution(
        qid=question.qid,
        benchmark=question.benchmark,
        task=question.task,
        variant=question.variant,
        model=model,
        loader=loader or DEFAULT_LOADER,
        protocol=getattr(protocol, "name", "") or "",
        features=features,
        shapley=table.shapley,
        stderr=None,
        value_full=None,
        value_empty=None,
        answer=question.answer,
        prediction=prediction_from_sums(table.shapley) if derive_prediction else None,
        estimator=estimator,
        budget=budget,
        evaluations=paper_evaluations(len(features), budget),
        seed=seed,
        runtime_s=None,
        version=version or __version__,
        error=None,
    )


def _checked_text_features(path: Path, table, question: Question, protocol: Any) -> tuple[Feature, ...]:
    """The protocol's text features of ``question``, once the CSV's rows and columns are checked against it.

    Raises:
        RecordError: frame rows out of order, option count or ground truth differ, or the text rows
            differ from the protocol's names.
    """
    n_frames = table.n_frames
    frame_names = table.elements[:n_frames]
    if frame_names != tuple(f"frame_{i}" for i in range(n_frames)):
        raise RecordError(str(path), question.qid, "element",
                          f"frame rows must be frame_0 … frame_{n_frames - 1} in order, got {list(frame_names)}")
    if table.shapley.shape[1] != question.n_options:
        raise RecordError(str(path), question.qid, "header",
                          f"{table.shapley.shape[1]} option columns but the question has {question.n_options} options")
    if table.answer != question.answer:
        known = "has no known answer" if question.answer is None else f"'s answer is {question.answer}"
        raise RecordError(str(path), question.qid, "header",
                          f"ground-truth column is option {table.answer} but the question{known}")
    text = tuple(protocol.text_features(question))
    found = table.elements[n_frames:]
    if tuple(f.name for f in text) != found:
        raise RecordError(str(path), question.qid, "element", _first_difference(text, found))
    return text


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_csv_dir` read.

    Attributes:
        attributions: one row per question, in question order (error rows for missing CSVs when
            allowed).
        stray: names of paper CSVs in the folder that belong to no given question (not imported).
    """

    attributions: tuple[Attribution, ...]
    stray: tuple[str, ...] = ()


def import_csv_dir(
    csv_dir: str | Path,
    questions: Sequence[Question],
    protocol: Any,
    model: str,
    *,
    mode: str = "joint",
    budget: int = PAPER_BUDGET,
    allow_missing: bool = False,
    progress: bool = False,
    **kwargs: Any,
) -> ImportResult:
    """Import the paper CSVs of every question from one folder (``<qid>_<budget>_<mode>.csv``).

    Args:
        csv_dir: the folder (one model × benchmark × variant of the paper's ``shap_results``).
        questions: the questions, in the order the rows should have.
        protocol, model: as in :func:`attribution_from_csv`.
        mode: the feature mode in the file names.
        budget: the budget in the file names (and the ``budget`` column).
        allow_missing: give a question without a CSV an error row instead of failing.
        progress: show a progress bar.
        **kwargs: passed to :func:`attribution_from_csv` (``loader``, ``derive_prediction``, ``seed``…).

    Raises:
        VqaShapError: the folder is missing, or CSVs are missing and ``allow_missing`` is False
            (the message counts and names them).
        RecordError: a CSV does not match its question.
    """
    csv_dir = Path(csv_dir)
    if not csv_dir.is_dir():
        raise VqaShapError(f"CSV folder {csv_dir} does not exist")
    paths = [csv_dir / csv_filename(q.qid, budget, mode) for q in questions]
    missing = [p.name for p in paths if not p.is_file()]
    if missing and not allow_missing:
        raise VqaShapError(f"{csv_dir}: {len(missing)} of {len(paths)} questions have no CSV "
                           f"(e.g. {', '.join(missing[:5])}); allow missing ones (--allow-missing) "
                           "to record them as error rows")
    known = {q.qid for q in questions}
    stray = tuple(sorted(p.name for p in csv_dir.glob("*.csv")
                         if (m := CSV_NAME.match(p.name)) and m["qid"] not in known))
    items = zip(questions, paths)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(paths), desc=f"import {csv_dir.name}", unit="question")
    rows = []
    for question, path in items:
        if path.is_file():
            rows.append(attribution_from_csv(path, question, protocol, model, budget=budget, **kwargs))
        else:
            rows.append(_missing_row(question, protocol, model, path, budget, **kwargs))
    return ImportResult(tuple(rows), stray)


def _missing_row(question: Question, protocol: Any, model: str, path: Path, budget: int, *,
                 loader: str | None = None, estimator: str = PAPER_ESTIMATOR,
                 seed: int | None = PAPER_SEED, version: str | None = None, **_: Any) -> Attribution:
    from vqa_shap import __version__

    return Attribution(
        qid=question.qid, benchmark=question.benchmark, task=question.task, variant=question.variant,
        model=model, loader=loader or DEFAULT_LOADER, protocol=getattr(protocol, "name", "") or "",
        features=(), shapley=[], answer=question.answer, estimator=estimator, budget=budget,
        seed=seed, version=version or __version__,
        error=f"no published CSV {path.name} in {path.parent}")


def _first_difference(expected: Sequence[Feature], found: Sequence[str]) -> str:
    for i, (e, f) in enumerate(zip(expected, found)):
        if e.name != f:
            return (f"text row {i} is {f!r} but the protocol's {e.modality} word is {e.name!r} "
                    f"(expected {len(expected)} text rows, found {len(found)})")
    return f"expected {len(expected)} text rows from the protocol, found {len(found)}"


def attribution_to_csv(attr: Attribution):
    """The paper's CSV table of one attribution row as a ``pandas.DataFrame``.

    Columns ``element``, ``A``, ``B``, … (the answer's suffixed ``": Ground Truth"``), one row
    per feature, float64 values.

    Raises:
        VqaShapError: the row has ``error`` set (nothing to export).
    """
    import pandas as pd

    if attr.error is not None:
        raise VqaShapError(f"attribution {attr.qid!r} has an error ({attr.error}); nothing to export")
    columns = option_letters(attr.n_options)
    columns[require_answer(attr, "the paper's CSV (its ': Ground Truth' column)")] += GROUND_TRUTH_SUFFIX
    frame = pd.DataFrame(np.asarray(attr.shapley, dtype=np.float64), columns=columns)
    frame.insert(0, ELEMENT_COLUMN, [f.name for f in attr.features])
    return frame


def write_csv(attr: Attribution, path: str | Path) -> Path:
    """Write one attribution row as a paper CSV (no index column); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attribution_to_csv(attr).to_csv(path, index=False, lineterminator="\n")
    return path
