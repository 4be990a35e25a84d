"""The steps of a study and how a finished one is recognised.

A :class:`Step` names its settings (what, besides its inputs, determines its output), the steps it
needs, a fingerprint of its inputs (taken when it is checked, i.e. after the steps it needs ran) and
whether its outputs exist. When a step finishes, a small record (its settings and input fingerprint)
is written to ``OUT/.study/<step id>.json``. A step is **done** when its outputs exist and its record
matches its current settings and inputs; otherwise it runs again (and so do the steps that read its
output, if that output changed). Fingerprints of Hub configs are content hashes of their parquet
files, so a step re-run with the same result leaves the steps after it done; a source folder's
fingerprint is its files' names, sizes and modification times (a benchmark's sources can be large).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

#: Where the step records live, inside the study's output folder.
RECORDS_DIR = ".study"


@dataclass(frozen=True)
class Step:
    """One step of a study.

    Attributes:
        id: unique, file-safe (``explain-demo__synthetic_easy``).
        kind: ``generate``, ``build``, ``augment``, ``explain``, ``metrics``, ``report`` or ``view``.
        title: what it does, for the plan.
        settings: JSON-ready settings that determine its output besides its inputs.
        deps: ids of the steps whose outputs it reads.
        inputs: the fingerprint of what it reads (JSON-ready), taken when the step is checked.
        exists: whether its outputs exist.
        execute: does the work; returns a one-line summary (and, for explain, the evaluations).
        progress: optional note on an unfinished step's partial work (e.g. questions already explained).
    """

    id: str
    kind: str
    title: str
    settings: Mapping[str, Any]
    deps: tuple[str, ...]
    inputs: Callable[[], Any]
    exists: Callable[[], bool]
    execute: Callable[[], "Outcome"]
    progress: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class Outcome:
    """What running a step did: a one-line ``summary`` and the model ``evaluations`` it made."""

    summary: str
    evaluations: int = 0


@dataclass(frozen=True)
class Status:
    """A step's state: ``done``, or not and why (``reason``)."""

    done: bool
    reason: str


class Records:
    """The finished-step records of one output folder."""

    def __init__(self, out: Path):
        self.folder = Path(out) / RECORDS_DIR

    def path(self, step_id: str) -> Path:
        return self.folder / f"{step_id}.json"

    def read(self, step_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(step_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing or unreadable: the step is simply not recorded as done
            return None

    def write(self, step_id: str, settings: Mapping[str, Any], inputs: Any, *, finished: bool) -> None:
        from vqa_shap.atomic_files import atomic_write_json

        record = {"settings": canonical(settings), "inputs": canonical(inputs), "finished": finished}
        if not finished:  # a step about to run may need the settings its earlier outputs were made with
            earlier = self.read(step_id)
            record["previous_settings"] = None if earlier is None else earlier.get("settings")
        atomic_write_json(self.path(step_id), record, mkdir=True, indent=1, sort_keys=True)

    def previous_settings(self, step_id: str) -> Any:
        """The settings the step ran with before the run under way (``None``: it never ran before)."""
        record = self.read(step_id)
        if record is None:
            return None
        return record.get("previous_settings", record.get("settings"))


def canonical(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists, paths strings), for comparisons."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def status(step: Step, records: Records, not_done: Mapping[str, Status]) -> Status:
    """Whether ``step`` is done; ``not_done``: the steps before it that are not."""
    waiting = [d for d in step.deps if d in not_done]
    if waiting:
        return Status(False, f"after {waiting[0]}")
    record = records.read(step.id)
    if not step.exists():
        return Status(False, "not run yet" if record is None else "its output is missing")
    if record is None or not record.get("finished"):
        return Status(False, "no record of a finished run")
    if record.get("settings") != canonical(step.settings):
        return Status(False, "its settings changed")
    if record.get("inputs") != canonical(step.inputs()):
        return Status(False, "its inputs changed")
    return Status(True, "done")


class Fingerprints:
    """Content hashes of Hub configs and stat fingerprints of folders, cached by file size and time."""

    def __init__(self):
        self._files: dict[tuple[str, int, int], str] = {}

    def file(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._files:
            from vqa_shap.atomic_files import file_digest

            self._files[key] = file_digest(path)
        return self._files[key]

    def config(self, folder: Path, config: str) -> str | None:
        """The hash of a config's data files (``None`` when it has none)."""
        from vqa_shap.hub.card import config_dir

        files = sorted((Path(folder) / config_dir(config)).glob("*.parquet"))
        return self.files(files) if files else None

    def files(self, paths) -> str:
        """The hash of some files' contents (e.g. a report's figures)."""
        return hashlib.sha256("".join(f"{p.name}:{self.file(p)};" for p in sorted(paths)).encode()).hexdigest()

    def videos(self, questions: Path, config: str, video_root: Path) -> str | None:
        """Names, sizes and modification times of the visual inputs a questions config names under
        ``video_root`` (:meth:`folder` of each: a video file, or a frame folder by its files), hashed; ``None``
        when the config is missing. Stat only: hashing hours of video on every check would be slow,
        and a rewritten file changes its modification time."""
        from vqa_shap.hub import folder as hub

        try:
            dataset = hub.load_questions_dataset(questions, config)
        except Exception:  # noqa: BLE001 - no readable questions yet: nothing to fingerprint
            return None
        paths = sorted({str(i["path"]) for inputs in dataset["inputs"] for i in inputs})
        # folder() takes a file or a frame folder alike, and gives None for a missing one
        return hashlib.sha256("\n".join(f"{rel}:{self.folder(Path(video_root) / rel)}" for rel in paths)
                              .encode()).hexdigest()

    @staticmethod
    def folder(folder: Path) -> str | None:
        """Names, sizes and modification times of every visible file under ``folder`` (``None``: missing)."""
        folder = Path(folder)
        if not folder.exists():
            return None
        entries = []
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(n for n in names if not n.startswith(".")):
                stat = (Path(root) / name).stat()
                entries.append(f"{Path(root, name).relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}")
        if folder.is_file():
            stat = folder.stat()
            entries.append(f"{folder.name}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(entries).encode()).hexdigest()
