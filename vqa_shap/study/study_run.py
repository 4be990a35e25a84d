"""Running a study: the next step that is not done, then the plan again, until every step is done.

The plan is made again after every step because a benchmark's variant and explain steps are known
only once it is built. A step that is still not done right after it ran is an internal error (its
record or fingerprint is broken), never an endless loop.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vqa_shap.study.plan import Layout, Plan, make_plan
from vqa_shap.study.spec import Study, StudyError
from vqa_shap.study.steps import Fingerprints, Records, Status, Step, status

#: File marking a folder as a study's output: a study may write into it (and resume there).
MARKER = ".vqa-shap-study"


@dataclass(frozen=True)
class StudyResult:
    """What one ``run_study`` did.

    Attributes:
        out: the output folder.
        ran: ids of the steps run, in order (empty: everything was done already).
        done: ids of the steps found done.
        evaluations: model evaluations made by the explain steps run.
        seconds: wall time.
    """

    out: Path
    ran: tuple[str, ...]
    done: tuple[str, ...]
    evaluations: int
    seconds: float


def output_folder(study: Study, out: str | os.PathLike | None) -> Path:
    """``out``, else the folder the study file names, else ``./<study name>_study``."""
    if out is not None:
        return Path(out)
    return study.out if study.out is not None else Path(f"{study.name}_study")


def check_output_outside_inputs(study: Study, out: Path) -> None:
    """Refuse an output folder inside (or equal to) a benchmark's source or videos folder: every file the
    study writes would change that input's fingerprint, so its build would never be done.

    Raises:
        StudyError: naming the benchmark key and both folders.
    """
    where = Path(os.path.abspath(out))
    for i, bench in enumerate(study.benchmarks):
        for field in ("source", "videos"):
            folder = getattr(bench, field)
            if folder is not None and where.is_relative_to(os.path.abspath(folder)):
                raise StudyError(f"{study.path}: key 'benchmarks[{i}].{field}': the output folder {out} is inside "
                                 f"{folder}; what the study writes would change its own input; choose an "
                                 "output folder outside the benchmark's folders")


def claim_output_folder(out: Path) -> None:
    """Refuse a non-empty folder no study wrote; mark it as a study's."""
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise StudyError(f"--out {out} is not empty and was not written by vqa-shap run; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).exists():  # a resumed run changes nothing that is done, not even this
        (out / MARKER).touch()


def statuses(plan: Plan, records: Records) -> list[tuple[Step, Status]]:
    """Every step's status, in order (a step after one that is not done waits for it)."""
    found: list[tuple[Step, Status]] = []
    not_done: dict[str, Status] = {}
    for step in plan.steps:
        state = status(step, records, not_done)
        if not state.done:
            not_done[step.id] = state
        found.append((step, state))
    return found


def describe(study: Study, out: Path, *, echo: Callable[[str], None] = print) -> list[tuple[Step, Status]]:
    """Print the plan (``--dry-run``): every step, done or to do and why; nothing is written."""
    check_output_outside_inputs(study, out)
    plan = make_plan(study, Layout(out), Fingerprints(), progress=False)
    found = statuses(plan, Records(out))
    echo(f"study {study.name!r} ({study.path}) -> {out}: {len(found)} steps, "
         f"{sum(s.done for _, s in found)} done")
    after = dict(plan.pending)
    for step, state in found:
        note = step.progress() if step.progress is not None and not state.done else None
        echo(f"  [{'done' if state.done else 'todo'}] {step.id}: {step.title}"
             + ("" if state.done else f" ({state.reason}{'; ' + note if note else ''})"))
        if step.id in after:
            echo(f"  [todo] {after[step.id]}")
    return found


def run_study(study: Study, out: str | os.PathLike | None = None, *, progress: bool = True,
              echo: Callable[[str], None] = print) -> StudyResult:
    """Run every step of ``study`` that is not done; see :mod:`vqa_shap.study`.

    Args:
        study: the parsed study file (:func:`~vqa_shap.study.spec.load_study`).
        out: the output folder (default: :func:`output_folder`).
        progress: progress bars in the explain, report and view steps.
        echo: where the log lines go.

    Raises:
        StudyError: the output folder is not a study's; VqaShapError from a step (bad input found there).
    """
    started = time.perf_counter()
    out = output_folder(study, out)
    check_output_outside_inputs(study, out)
    claim_output_folder(out)
    _check_models(study)
    layout, prints, records = Layout(out), Fingerprints(), Records(out)
    ran: list[str] = []
    evaluations = 0
    with _datasets_bars_off():  # one line per step; the steps' own bars (explain, report, view) stay
        while True:
            found = statuses(make_plan(study, layout, prints, progress=progress), records)
            todo = [(step, state) for step, state in found if not state.done]
            if not todo:
                break
            evaluations += _run_step(*todo[0], records, ran, echo)
    seconds = time.perf_counter() - started
    done = tuple(step.id for step, _ in found if step.id not in ran)
    echo(f"study {study.name!r}: {len(ran)} step(s) run, {len(done)} already done, "
         f"{evaluations} model evaluations, {seconds:.1f} s -> {out}")
    return StudyResult(out, tuple(ran), done, evaluations, seconds)


def _run_step(step: Step, state: Status, records: Records, ran: list[str], echo: Callable[[str], None]) -> int:
    """Run one step (recording it as started, then finished); returns its model evaluations."""
    if step.id in ran:
        from vqa_shap.errors import InternalError

        raise InternalError(f"step {step.id} is still not done after it ran ({state.reason})")
    echo(f"[{len(ran) + 1}] {step.id}: {step.title} ({state.reason})")
    inputs = step.inputs()
    records.write(step.id, step.settings, inputs, finished=False)
    outcome = step.execute()
    records.write(step.id, step.settings, inputs, finished=True)
    echo(f"    {outcome.summary}")
    ran.append(step.id)
    return outcome.evaluations


def _datasets_bars_off():
    from vqa_shap.hub import folder as hub

    return hub._datasets_bars_off()


def _check_models(study: Study) -> None:
    """Resolve every model before any work, so a wrong checkpoint stops the run at once."""
    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders import resolve_model

    for i, model in enumerate(study.models):
        try:
            resolve_model(model.model, model.loader)
        except VqaShapError as exc:
            raise StudyError(f"{study.path}: key 'models[{i}].model': {exc}") from exc
