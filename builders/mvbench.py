"""MVBench (``OpenGVLab/MVBench`` layout).

Source folder::

    json/<task>.json      a list of {video, question, candidates, answer, [start, end, …]} per task

* ``qid`` = ``<task>_<position>`` with position = ``records.index(record)`` — the *first* equal
  record, exactly as the paper forms it (identical repeats therefore share one qid and are kept once).
* ``answer`` = the index of the ``answer`` text among ``candidates``.
* ``inputs``: one input from :data:`TASKS` (folder, kind, whether ``start``/``end`` bound the clip):
  path ``<folder>/<video>`` relative to the MVBench video root (the release's ``video/`` folder);
  ``episodic_reasoning`` is a folder of frames at 3 fps.
* Every field other than question / candidates / answer (``subtitle``, ``show_name``, ``fps``,
  ``accurate_start``/``accurate_end``, …) is kept in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vqa_shap.builders.base import Builder, RecordFormat, SourceRecord, extra_fields
from vqa_shap.builders.source import (
    FieldError, SourceFileError, read_json, require_list, require_number, require_path, require_str,
)
from vqa_shap.errors import RecordError
from vqa_shap.schema.records import Question, VisualInput

BENCHMARK = "mvbench"
#: Frame rate of the frame-folder task (episodic_reasoning, TVQA frames at 3 fps).
FRAME_FOLDER_FPS = 3.0


@dataclass(frozen=True)
class TaskSource:
    """Where a task's videos live under the video root and how to read them."""

    folder: str
    kind: str = "video"
    bound: bool = False


#: The task table of the paper's ``mvbench_utils``. ``fine_grained_pose`` is listed so
#: its records build, but the paper's subset excludes it (its NTU RGB+D videos were not obtained).
TASKS: dict[str, TaskSource] = {
    "action_sequence": TaskSource("star/Charades_v1_480", bound=True),
    "action_prediction": TaskSource("star/Charades_v1_480", bound=True),
    "action_antonym": TaskSource("ssv2_video"),
    "fine_grained_action": TaskSource("Moments_in_Time_Raw/videos"),
    "unexpected_action": TaskSource("FunQA_test/test"),
    "object_existence": TaskSource("clevrer/video_validation"),
    "object_interaction": TaskSource("star/Charades_v1_480", bound=True),
    "object_shuffle": TaskSource("perception/videos"),
    "moving_direction": TaskSource("clevrer/video_validation"),
    "action_localization": TaskSource("sta/sta_video", bound=True),
    "scene_transition": TaskSource("scene_qa/video"),
    "action_count": TaskSource("perception/videos"),
    "moving_count": TaskSource("clevrer/video_validation"),
    "moving_attribute": TaskSource("clevrer/video_validation"),
    "state_change": TaskSource("perception/videos"),
    "fine_grained_pose": TaskSource("nturgbd"),
    "character_order": TaskSource("perception/videos"),
    "egocentric_navigation": TaskSource("vlnqa"),
    "episodic_reasoning": TaskSource("tvqa/frames_fps3_hq", kind="frames", bound=True),
    "counterfactual_inference": TaskSource("clevrer/video_validation"),
}


def task_of(qid: str) -> str:
    """The task of an MVBench qid ``<task>_<position>``."""
    return qid.rsplit("_", 1)[0]


def to_question(record: SourceRecord) -> Question:
    """Parse one MVBench record (its task is read from the qid)."""
    raw = record.raw
    task = task_of(record.qid)
    if task not in TASKS:
        raise FieldError("q_uid", f"unknown MVBench task {task!r}; known: {', '.join(TASKS)}")
    where = TASKS[task]
    candidates = require_list(raw, "candidates")
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, str):
            raise FieldError(f"candidates[{i}]", f"expected a string, got {candidate!r}")
    answer_text = require_str(raw, "answer")
    if answer_text not in candidates:
        raise FieldError("answer", f"{answer_text!r} is not one of the candidates")
    video = require_path(raw, "video")
    start = end = None
    if where.bound:
        start, end = require_number(raw, "start"), require_number(raw, "end")
    fps = FRAME_FOLDER_FPS if where.kind == "frames" else None
    return Question(
        qid=record.qid,
        benchmark=BENCHMARK,
        task=task,
        question=require_str(raw, "question"),
        options=tuple(candidates),
        answer=candidates.index(answer_text),
        inputs=(VisualInput(where.kind, f"{where.folder}/{video}", start=start, end=end, fps=fps,
                            label="video 1"),),
        extra=extra_fields(raw, ["question", "candidates", "answer"]),
    )


FORMAT = RecordFormat(BENCHMARK, to_question, option_field="candidates[{i}]", answer_field="answer")


def positional_qids(task: str, records: list) -> list[str]:
    """The paper's qids of a task list: ``<task>_<records.index(record)>`` (first equal record)."""
    return [f"{task}_{records.index(record)}" for record in records]


class MvBenchBuilder(Builder):
    """MVBench from ``json/<task>.json``."""

    name = "mvbench"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        files = sorted((source / "json").glob("*.json"))
        if not files:
            raise SourceFileError(f"{source / 'json'}: no MVBench task files (json/<task>.json)")
        for file in files:
            task = file.stem
            if task not in TASKS:
                raise SourceFileError(f"{file}: unknown MVBench task {task!r}; known: {', '.join(TASKS)}")
            records = read_json(file)
            if not isinstance(records, list):
                raise SourceFileError(f"{file}: expected a JSON list of records, got {type(records).__name__}")
            for qid, raw in zip(positional_qids(task, records), records):
                yield SourceRecord(str(file), qid, raw, FORMAT)
