"""A synthetic video benchmark with known evidence frames: coloured shapes on a black background.

The answer is visible in only one or two frames (``extra["evidence_frames"]``), and needs the
question and the options too, so attributions have a ground truth to be checked against.
:func:`generate_source` writes the source folder the ``synthetic`` builder reads; :func:`sample_items`
gives the same questions in memory (the demo model's training). Tasks and layout: docs/demo.md#the-synthetic-benchmark.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vqa_shap.builders.base import Builder, RecordFormat, SourceRecord, extra_fields
from vqa_shap.builders.source import FieldError, SourceFileError, read_json, require_path, require_str
from vqa_shap.errors import RecordError
from vqa_shap.atomic_files import atomic_write_json
from vqa_shap.schema.records import Question, VisualInput

BENCHMARK = "synthetic"
#: The question templates (``task`` values), in generation order.
TEMPLATES = ("colour_of_shape", "shape_of_colour", "shape_shown")
#: Colour name -> RGB.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 200, 50),
    "blue": (40, 70, 245),
    "yellow": (245, 225, 30),
    "white": (245, 245, 245),
    "purple": (165, 50, 220),
}
SHAPES = ("square", "circle", "triangle", "diamond")
#: Options per question.
N_OPTIONS = 4
#: Question wordings: ``short`` (the benchmark's: "What colour was the square?", 4 one-word options) or
#: ``long`` (EgoSchema length: the same question inside a ~35-word question, five ~20-word options
#: whose first word is the answer word; a fifth shape, ``cross``, so shape questions have five options).
WORDINGS = ("short", "long")
#: Options per question and shapes drawn, per wording.
WORDING_OPTIONS = {"short": N_OPTIONS, "long": 5}
WORDING_SHAPES = {"short": SHAPES, "long": (*SHAPES, "cross")}
#: Frames per video, frame size (height = width, pixels) and frame rate of the default benchmark.
N_FRAMES = 8
FRAME_SIZE = 64
FPS = 1.0
#: Probability that a non-evidence frame shows a distractor shape (else it is empty).
DISTRACTOR_P = 0.7
#: Every word the questions and options use (the demo model's tokenizer must know them).
VOCABULARY = ("what", "colour", "was", "the", "which", "shape", "shown", *COLOURS, *SHAPES)
#: What c is doing in a long-wording question and its options (words that do not decide the answer).
LONG_ACTIVITIES = ("cooking a vegetable soup", "repairing a bicycle wheel", "cleaning the kitchen counter",
                   "painting a wooden chair", "planting seeds in the garden", "sorting the laundry",
                   "assembling a bookshelf", "washing the dishes", "packing a suitcase", "baking a loaf of bread",
                   "fixing a leaking tap", "arranging flowers in a vase")
LONG_TOOLS = ("knife", "wrench", "sponge", "brush", "trowel", "basket", "screwdriver", "towel", "bag",
              "rolling pin", "spanner", "pair of scissors")
#: The long wording's question: the short question ({ask}) inside EgoSchema-length text.
LONG_QUESTION = ("While c is {activity} in this video, several objects appear one after another. Taking the "
                 "whole video into account, {ask} and which option describes it best?")
#: A long option: the answer word first, then words that differ between options but decide nothing.
LONG_OPTION = "{word} is the answer, since c was {activity} and then put the {tool} back"
#: The words the long wording adds (its model's tokenizer knows them as well as :data:`VOCABULARY`).
LONG_VOCABULARY = tuple(dict.fromkeys(re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", " ".join(
    (LONG_QUESTION, LONG_OPTION, *LONG_ACTIVITIES, *LONG_TOOLS, "cross"))).lower())))
QUESTIONS_FILE = "questions.json"
VIDEOS_DIR = "videos"


@dataclass(frozen=True)
class Shape:
    """One shape drawn in one frame: its kind, colour name, centre (x, y) and half-size (pixels)."""

    shape: str
    colour: str
    x: int
    y: int
    radius: int

    def to_json(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "x": self.x, "y": self.y, "radius": self.radius}

    @classmethod
    def from_json(cls, data: dict) -> "Shape":
        return cls(str(data["shape"]), str(data["colour"]), int(data["x"]), int(data["y"]), int(data["radius"]))


@dataclass(frozen=True)
class SyntheticItem:
    """One generated question with its frames (what :func:`sample_items` yields).

    Attributes:
        question: the question (``extra`` holds ``evidence_frames`` and the frame contents).
        frames: uint8 ``[T, H, W, 3]`` RGB frames of its video.
        evidence_frames: indices of the frames that show the answer.
    """

    question: Question
    frames: np.ndarray
    evidence_frames: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# drawing


def draw(shapes: Sequence[Shape | None], size: int = FRAME_SIZE) -> np.ndarray:
    """Render one frame per entry (``None`` = an empty black frame): uint8 ``[T, size, size, 3]``."""
    frames = np.zeros((len(shapes), size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for t, s in enumerate(shapes):
        if s is None:
            continue
        dx, dy, r = xx - s.x, yy - s.y, float(s.radius)
        if s.shape == "square":
            inside = (np.abs(dx) <= r) & (np.abs(dy) <= r)
        elif s.shape == "circle":
            inside = dx ** 2 + dy ** 2 <= r ** 2
        elif s.shape == "diamond":
            inside = np.abs(dx) + np.abs(dy) <= 1.3 * r
        elif s.shape == "triangle":  # apex up, base at y + r
            inside = (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) / 2)
        elif s.shape == "cross":  # a plus sign, arms a third of the size wide
            inside = (np.abs(dx) <= r) & (np.abs(dy) <= r) & ((np.abs(dx) <= r / 3) | (np.abs(dy) <= r / 3))
        else:
            raise ValueError(f"unknown shape {s.shape!r}; valid: {', '.join(WORDING_SHAPES['long'])}")
        frames[t][inside] = COLOURS[s.colour]
    return frames


def _place(rng: np.random.Generator, shape: str, colour: str, size: int) -> Shape:
    # big shapes (a third to half of the frame): what a frame shows is clear at the model's resolution
    radius = int(rng.integers(size * 5 // 16, size * 7 // 16 + 1))
    margin = radius + 1
    x = int(rng.integers(margin, size - margin + 1))
    y = int(rng.integers(margin, size - margin + 1))
    return Shape(shape, colour, x, y, radius)


# ---------------------------------------------------------------------------------------------
# generation


def _options(rng: np.random.Generator, answer_word: str, pool: Sequence[str],
             n_options: int = N_OPTIONS) -> tuple[list[str], int]:
    others = [w for w in pool if w != answer_word]
    chosen = list(rng.choice(others, n_options - 1, replace=False))
    answer = int(rng.integers(n_options))
    chosen.insert(answer, answer_word)
    return [str(c) for c in chosen], answer


def _sample_record(rng: np.random.Generator, qid: str, template: str, n_frames: int,
                   size: int, distractor_p: float = DISTRACTOR_P,
                   n_evidence: int | None = None, wording: str = "short") -> tuple[dict, list[Shape | None]]:
    colours, shapes, n_options = list(COLOURS), list(WORDING_SHAPES[wording]), WORDING_OPTIONS[wording]
    target_shape = str(rng.choice(shapes))
    target_colour = str(rng.choice(colours))
    n_evidence = int(rng.integers(1, 3)) if n_evidence is None else int(n_evidence)
    evidence = sorted(int(i) for i in rng.choice(n_frames, n_evidence, replace=False))
    frames: list[Shape | None] = []
    for t in range(n_frames):
        if t in evidence:
            frames.append(_place(rng, target_shape, target_colour, size))
        elif template != "shape_shown" and rng.random() < distractor_p:
            other_shape = str(rng.choice([s for s in shapes if s != target_shape]))
            if template == "colour_of_shape":  # any colour: colour alone must not give the answer
                colour = str(rng.choice(colours))
            else:  # the asked colour belongs to the target shape only
                colour = str(rng.choice([c for c in colours if c != target_colour]))
            frames.append(_place(rng, other_shape, colour, size))
        else:
            frames.append(None)
    if template == "colour_of_shape":
        question = f"What colour was the {target_shape}?"
        options, answer = _options(rng, target_colour, colours, n_options)
    elif template == "shape_of_colour":
        question = f"Which shape was {target_colour}?"
        options, answer = _options(rng, target_shape, shapes, n_options)
    else:
        question = "Which shape was shown?"
        options, answer = _options(rng, target_shape, shapes, n_options)
    if wording == "long":
        question, options = _long_wording(rng, question, options)
    record = {
        "qid": qid, "task": template, "question": question, "options": options, "answer": answer,
        "video": f"{VIDEOS_DIR}/{qid}.mp4", "fps": FPS, "evidence_frames": evidence,
        "frames": [None if s is None else s.to_json() for s in frames],
    }
    return record, frames


def _long_wording(rng: np.random.Generator, question: str, options: list[str]) -> tuple[str, list[str]]:
    """The short question and one-word options in EgoSchema-length text (:data:`LONG_QUESTION`,
    :data:`LONG_OPTION`); the activity and tools are drawn at random and decide nothing."""
    activities = rng.permutation(len(LONG_ACTIVITIES))[:len(options) + 1]
    tools = rng.permutation(len(LONG_TOOLS))[:len(options)]
    ask = question[0].lower() + question[1:-1]
    text = LONG_QUESTION.format(activity=LONG_ACTIVITIES[activities[0]], ask=ask)
    return text, [LONG_OPTION.format(word=word, activity=LONG_ACTIVITIES[a], tool=LONG_TOOLS[t])
                  for word, a, t in zip(options, activities[1:], tools)]


def check_templates(templates: Sequence[str]) -> None:
    """Raise ``ValueError`` (listing the valid ones) unless ``templates`` is non-empty and all known."""
    unknown = [t for t in templates if t not in TEMPLATES]
    if unknown or not templates:
        problem = f"unknown template(s) {unknown}" if unknown else "no templates given"
        raise ValueError(f"{problem}; valid: {', '.join(TEMPLATES)}")


def tile(frames: np.ndarray, tiles: int) -> np.ndarray:
    """Every frame repeated ``tiles`` x ``tiles`` times (a wallpaper of the drawn frame)."""
    return np.tile(frames, (1, tiles, tiles, 1)) if tiles > 1 else frames


def _records(n_questions: int, seed: int, n_frames: int, size: int, templates: Sequence[str],
             distractor_p: float = DISTRACTOR_P, n_evidence: int | None = None,
             wording: str = "short") -> Iterator[tuple[dict, list[Shape | None]]]:
    check_templates(templates)
    if wording not in WORDINGS:
        raise ValueError(f"unknown wording {wording!r}; valid: {', '.join(WORDINGS)}")
    if n_questions < 1 or n_frames < 2 or size < 16 or size % 2:
        raise ValueError("need n_questions >= 1, n_frames >= 2 and an even frame size >= 16")
    if n_evidence is not None and not 1 <= n_evidence <= n_frames:
        raise ValueError(f"n_evidence must be in [1, n_frames={n_frames}], got {n_evidence}")
    rng = np.random.default_rng(seed)
    for i in range(n_questions):
        template = templates[i % len(templates)]
        yield _sample_record(rng, f"synthetic-{seed}-{i:05d}", template, n_frames, size, distractor_p, n_evidence,
                             wording)


def sample_items(n_questions: int, *, seed: int = 0, n_frames: int = N_FRAMES, size: int = FRAME_SIZE,
                 templates: Sequence[str] = TEMPLATES, distractor_p: float = DISTRACTOR_P,
                 n_evidence: int | None = None, wording: str = "short", tiles: int = 1) -> Iterator[SyntheticItem]:
    """Generate questions with their frames in memory (no files), cycling over ``templates``.

    The questions are exactly those :func:`generate_source` writes for the same arguments.
    ``distractor_p`` (probability that a non-evidence frame shows a distractor shape) lets training
    start with easy videos (a curriculum); the benchmark uses :data:`DISTRACTOR_P`. ``n_evidence``
    fixes the number of evidence frames (default: 1 or 2 at random, as the benchmark). ``wording`` is
    one of :data:`WORDINGS`; ``tiles`` > 1 shows each drawn frame ``tiles`` x ``tiles`` times
    (:func:`tile`; frames of ``tiles * size`` pixels).
    """
    if not 0.0 <= distractor_p <= 1.0:
        raise ValueError(f"distractor_p must be in [0, 1], got {distractor_p}")
    for record, shapes in _records(n_questions, seed, n_frames, size, templates, distractor_p, n_evidence, wording):
        question = to_question(SourceRecord("<memory>", record["qid"], record, FORMAT))
        yield SyntheticItem(question, tile(draw(shapes, size), tiles), tuple(record["evidence_frames"]))


def generate_source(folder: str | os.PathLike, n_questions: int = 60, *, seed: int = 0,
                    n_frames: int = N_FRAMES, size: int = FRAME_SIZE,
                    templates: Sequence[str] = TEMPLATES, wording: str = "short", tiles: int = 1,
                    progress: bool = False) -> Path:
    """Write a synthetic benchmark source folder: ``questions.json`` and one video per question.

    Args:
        folder: the folder (created); existing files of the same names are replaced.
        n_questions: number of questions (templates cycle).
        seed: everything (shapes, positions, evidence frames, options) follows from it.
        n_frames: frames per video (at :data:`FPS`).
        size: frame height and width in pixels (even).
        templates: which of :data:`TEMPLATES` to use.
        wording: one of :data:`WORDINGS`.
        tiles: show each drawn frame ``tiles`` x ``tiles`` times (:func:`tile`).
        progress: show a progress bar.

    Returns:
        The folder, ready for ``get_builder("synthetic").build(folder)``; it is also the video root.
    """
    from tqdm.auto import tqdm

    from vqa_shap.synthetic_inputs import write_video

    folder = Path(folder)
    (folder / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for record, shapes in tqdm(_records(n_questions, seed, n_frames, size, templates, wording=wording),
                               total=n_questions,
                               desc="synthetic videos", unit=" videos", disable=not progress):
        write_video(folder / record["video"], tile(draw(shapes, size), tiles), FPS)
        records.append(record)
    atomic_write_json(folder / QUESTIONS_FILE, records, indent=1)
    return folder


# ---------------------------------------------------------------------------------------------
# the builder


def _require_index_list(raw: dict, field: str) -> list[int]:
    value = raw.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool)
                                                         for v in value):
        raise FieldError(field, f"expected a non-empty list of frame indices, got {value!r}")
    return [int(v) for v in value]


def to_question(record: SourceRecord) -> Question:
    """Parse one synthetic record; the evidence frames and frame contents go to ``extra``."""
    raw = record.raw
    options = raw.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise FieldError("options", f"expected a list of strings, got {options!r}")
    task = require_str(raw, "task")
    if task not in TEMPLATES:
        raise FieldError("task", f"unknown template {task!r}; valid: {', '.join(TEMPLATES)}")
    fps = raw.get("fps")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise FieldError("fps", f"expected a positive number, got {fps!r}")
    frames = raw.get("frames")
    if not isinstance(frames, list):
        raise FieldError("frames", f"expected a list (one entry per frame), got {type(frames).__name__}")
    evidence = _require_index_list(raw, "evidence_frames")
    bad = [i for i in evidence if not 0 <= i < len(frames)]
    if bad:
        raise FieldError("evidence_frames", f"frame indices {bad} outside the video's {len(frames)} frames")
    extra = extra_fields(raw, ["qid", "task", "question", "options", "answer", "video", "fps"])
    extra["n_frames"] = len(frames)
    return Question(
        qid=record.qid, benchmark=BENCHMARK, task=task, question=require_str(raw, "question"),
        options=tuple(options), answer=raw.get("answer"),
        inputs=(VisualInput("video", require_path(raw, "video"), fps=float(fps), label="video 1"),),
        extra=extra,
    )


FORMAT = RecordFormat(BENCHMARK, to_question, option_field="options[{i}]", answer_field="answer")


def evidence_frames(question: Question) -> tuple[int, ...]:
    """The evidence frame indices of a synthetic question (from ``extra``).

    Raises:
        ValueError: the question has no ``evidence_frames`` in ``extra``.
    """
    value = question.extra.get("evidence_frames")
    if not value:
        raise ValueError(f"question {question.qid!r} has no evidence_frames in extra (not a synthetic question)")
    return tuple(int(v) for v in value)


class SyntheticBuilder(Builder):
    """The synthetic coloured-shapes benchmark from a folder written by :func:`generate_source`."""

    name = "synthetic"

    def records(self, source: Path) -> Iterator[SourceRecord | RecordError]:
        path = source / QUESTIONS_FILE
        if not path.is_file():
            raise SourceFileError(f"{path}: file not found (write a synthetic benchmark with "
                                  f"vqa_shap.builders.shapes.generate_source)")
        records = read_json(path)
        if not isinstance(records, list):
            raise SourceFileError(f"{path}: expected a JSON list of question records")
        for position, raw in enumerate(records):
            qid = raw.get("qid") if isinstance(raw, dict) else None
            if not isinstance(qid, str) or not qid:
                yield RecordError(str(path), f"#{position}", "qid", f"missing or not a string: {qid!r}")
                continue
            yield SourceRecord(str(path), qid, raw, FORMAT)
