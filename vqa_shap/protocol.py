"""Protocols: how a question becomes model input, and what the Shapley players are.

A :class:`Protocol` fixes everything between a questions-dataset row and a model loader:

* the **word split** and **text normalisation** (which define the text players),
* the **player list** (:meth:`Protocol.features`): frames first, then question words, then each
  option's words — optionally grouping ``temporal_unit`` consecutive frames into one player,
* the **prompt** of a masked input (:meth:`Protocol.render`): masked words left as blanks, the
  instruction template with option letters, the system prompt per benchmark, HD-EPIC tag rewriting,
* **frame sampling** (:meth:`Protocol.plan_frames`, pure sampler functions below) and decoding
  (:meth:`Protocol.load_frames`), and the **masked-frame baseline** per loader family.

``pollard2025`` (:class:`Pollard2025`) reproduces "A Video Is Not Worth a Thousand Words"
(Pollard & Wray, 2025) as its public code does (SEED_SPEC.md §1, §3). This module is light: it
imports only ``numpy`` and ``re``; video decoding is imported when frames are planned or loaded.
"""

from __future__ import annotations

import re
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vqa_shap.registry import Registry
from vqa_shap.schema import Feature, Question, VisualInput

__all__ = [
    "split_words", "FrameRef", "FramePlan", "PromptInput", "Prompt", "Protocol", "Pollard2025",
    "PROTOCOLS", "get_protocol", "SAMPLERS", "linspace", "segment_midpoints", "uniform_edges",
    "fps1_capped", "mvbench_bounds", "hd_epic_windows", "parse_tags", "option_letter", "join_words",
]

# ---------------------------------------------------------------------------------------------
# Words
# ---------------------------------------------------------------------------------------------

#: The paper's token pattern (SEED_SPEC §3.1): runs of word characters and apostrophes, whole
#: angle-bracket tags, and single punctuation characters. Anything else is dropped.
WORD_PATTERN = re.compile(r"[\w']+|<[^<>]*>|[.,!?;:\"\/()_-]")


def split_words(text: str) -> list[str]:
    """Split text into the paper's word players (SEED_SPEC §3.1).

    Args:
        text: normalised text (a question or one option).

    Returns:
        The tokens in order; characters outside the pattern (``& % + $ …``, curly quotes) vanish.
    """
    return WORD_PATTERN.findall(text)


def join_words(words: Sequence[str], keep: Sequence[bool] | np.ndarray | None = None) -> str:
    """Re-join words as the paper does: a masked word becomes one space, then ``' '.join``.

    So even unmasked text is the re-joined token string ("sacks." -> "sacks ."), and a masked
    word leaves three spaces between its neighbours (SEED_SPEC §3.3).
    """
    if keep is None:
        return " ".join(words)
    return " ".join(w if k else " " for w, k in zip(words, keep))


# ---------------------------------------------------------------------------------------------
# HD-EPIC tags
# ---------------------------------------------------------------------------------------------

_TIME_TAG = re.compile(r"<TIME\s+([\d:.]+)\s+(.+?)>")
_BBOX_TAG = re.compile(r"<BBOX\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*>")
#: HD-EPIC bounding boxes are given in pixels of 1408-pixel frames; prompts use a 1000 grid.
HD_EPIC_IMAGE_SIZE = 1408.0


def clock_seconds(text: str) -> int:
    """``HH:MM:SS.fff`` (or ``MM:SS``/``SS``) -> whole seconds, truncated as the paper does."""
    parts = [float(p) for p in text.split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return int(seconds)


def _format_clock(seconds: float) -> str:
    # time.gmtime as the paper: floors, and wraps negative times (-12 s -> "59:48")
    fmt = "%H:%M:%S" if seconds >= 3600 else "%M:%S"
    return _time.strftime(fmt, _time.gmtime(seconds))


def parse_tags(text: str, stride: float, window_starts: dict[str, float] | None = None) -> str:
    """Rewrite HD-EPIC ``<TIME …>`` and ``<BBOX …>`` tags as the paper's ``parse_tags`` (SEED §1.2).

    Args:
        text: the (masked) prompt text.
        stride: seconds per sampled frame (:attr:`FramePlan.stride`).
        window_starts: input label -> window start (s) for inputs that have one; a tag's time is
            taken relative to its input's start (both truncated to whole seconds).

    Returns:
        The text with ``<TIME t key>`` -> ``MM:SS`` of ``(int(t) - int(start)) / stride`` and
        ``<BBOX a b c d>`` -> ``(a', b', c', d')`` with ``v' = int(v / 1408 * 1000)``.
    """
    window_starts = window_starts or {}

    def time_tag(match: re.Match) -> str:
        seconds = clock_seconds(match.group(1))
        start = window_starts.get(match.group(2))
        if start is not None:
            seconds -= int(start)
        return _format_clock(seconds / stride)

    def bbox_tag(match: re.Match) -> str:
        coords = [int(float(v) / HD_EPIC_IMAGE_SIZE * 1000) for v in match.groups()]
        return "(" + ", ".join(str(c) for c in coords) + ")"

    return _BBOX_TAG.sub(bbox_tag, _TIME_TAG.sub(time_tag, text))


# ---------------------------------------------------------------------------------------------
# Frame samplers: pure functions of numbers, each one formula of SEED_SPEC §1
# ---------------------------------------------------------------------------------------------


def linspace(n_total: int, n: int, last: int | None = None) -> list[int]:
    """``linspace(0, last, n)`` cast to int; ``last`` defaults to ``n_total - 1``.

    L-V / LVA on EgoSchema (``last = n_total - 1``); LVBench uses ``last = n_total - 2``
    (``max_frame - 1`` with ``max_frame = len - 1``, so the last frame is never used).
    """
    last = n_total - 1 if last is None else last
    return [int(v) for v in np.linspace(0, max(last, 0), n).astype(int)]


def segment_midpoints(n_total: int, n: int) -> list[int]:
    """VideoLLaMA2: ``seg = (n_total - 1) / n``; frame_k = ``round(seg*k + seg/2 + 1e-6)``."""
    seg = (n_total - 1) / n
    return [int(round(seg * k + seg / 2 + 1e-6)) for k in range(n)]


def uniform_edges(n_total: int, n: int) -> list[int]:
    """InternVideo: ``edges = int(linspace(0, n_total, n + 1))``; frame_k = ``(e_k + e_{k+1} - 1) // 2``."""
    edges = np.linspace(0, n_total, n + 1).astype(int)
    return [int((edges[k] + edges[k + 1] - 1) // 2) for k in range(n)]


def fps1_capped(n_total: int, fps: float, n: int) -> tuple[list[int], list[float]]:
    """VideoLLaMA3: frames at 1 fps (rounded down), at most ``n`` of them by linspace.

    Second ``k`` (``k = 0 … floor(n_total / fps) - 1``) shows source frame ``floor(k * fps)``; when
    more than ``n`` seconds result, keep positions ``int(linspace(0, len - 1, n))``.

    Returns:
        (source frame indices, timestamps in seconds ``k``).
    """
    seconds = max(1, int(n_total / fps + 1e-6))  # 250 frames at 25/3 fps last 30 s, not 29.999…
    ks = list(range(seconds))
    if len(ks) > n:
        ks = [ks[i] for i in np.linspace(0, len(ks) - 1, n).astype(int)]
    return [min(n_total - 1, int(k * fps + 1e-6)) for k in ks], [float(k) for k in ks]


def mvbench_bounds(n: int, fps: float, max_frame: int, bound: tuple[float, float] | None = None,
                   first_idx: int = 0) -> list[int]:
    """MVBench ``get_indices``: ``n`` segment centres between the bound's frames (SEED §1.3).

    ``start_idx = max(first_idx, round(start*fps))``, ``end_idx = min(round(end*fps), max_frame)``,
    ``seg = (end_idx - start_idx) / n``, frame_k = ``int(start_idx + seg/2 + round(seg*k))``
    (half-to-even rounding). Without a bound, ``(-1e5, 1e5)``. Videos: ``max_frame = len - 1``,
    ``first_idx = 0``; frame folders: ``max_frame`` = number of files, ``first_idx = 1``.
    """
    start, end = bound if bound is not None else (-1e5, 1e5)
    start_idx = max(first_idx, round(start * fps))
    end_idx = min(round(end * fps), max_frame)
    seg = (end_idx - start_idx) / n
    return [int(start_idx + seg / 2 + np.round(seg * k)) for k in range(n)]


def hd_epic_windows(windows: Sequence[tuple[float, float]], n_images: int, n: int,
                    fps: float = 1.0) -> tuple[list[tuple[int, int]], float]:
    """HD-EPIC multi-input sampling (``calculate_frame_idxs``, SEED §1.2), for the video inputs.

    Args:
        windows: per video input, its resolved window ``(a, b)`` in seconds: candidates are the local
            frame indices ``arange(a*fps, b*fps)`` and the window lasts ``b - a`` seconds.
        n_images: number of image inputs (each takes one frame of the budget).
        n: requested total number of frames.
        fps: the videos' frame rate (the paper's videos are at 1 fps).

    Returns:
        (chosen ``(video position, local frame index)`` pairs in order, stride). The ``n - n_images``
        video frames (capped at the candidate count) sit at ``int(linspace(0, (len_s - 1)*fps, n_video))``
        of the concatenated candidates; ``stride = len_s / n_video`` seconds per sampled frame, or -1
        when there is no video frame (as the paper).
    """
    candidates = [(v, int(i)) for v, (a, b) in enumerate(windows)
                  for i in np.arange(a * fps, b * fps)]
    video_len = float(sum(b - a for a, b in windows))
    n_video = min(max(n - n_images, 0), len(candidates))
    if not windows or n_video == 0:
        return [], -1.0
    positions = np.linspace(0, (video_len - 1) * fps, n_video).astype(int)
    return [candidates[p] for p in positions], video_len / n_video


#: Sampler names accepted by :meth:`Protocol.plan_frames`.
SAMPLERS = ("linspace", "segment_midpoints", "uniform_edges", "fps1_capped", "mvbench_bounds",
            "hd_epic_windows")


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRef:
    """One sampled frame.

    Attributes:
        input: index into ``question.inputs``.
        index: frame index within that file (frame number in a folder; 0 for an image file).
        time: timestamp (s) used in prompts and features.
    """

    input: int
    index: int
    time: float


@dataclass(frozen=True)
class FramePlan:
    """The frames a question shows the model, ordered by input (kept inputs only), then time.

    Attributes:
        frames: the sampled frames.
        stride: HD-EPIC seconds per sampled frame (-1 for image-only questions, as the paper);
            ``None`` for other benchmarks.
    """

    frames: tuple[FrameRef, ...]
    stride: float | None = None

    @property
    def inputs(self) -> tuple[int, ...]:
        """The kept input indices, in order."""
        return tuple(dict.fromkeys(f.input for f in self.frames))

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class PromptInput:
    """One kept visual input of a prompt: its label, frame count and frame timestamps."""

    label: str
    n_frames: int
    times: tuple[float, ...]


@dataclass(frozen=True)
class Prompt:
    """A rendered (masked) prompt; the loader adds its own placeholder tokens for the inputs.

    Attributes:
        system: the system prompt.
        instruction: the user instruction (masked, tag-rewritten for HD-EPIC).
        inputs: one per kept visual input, in order.
        question: the masked question text (re-joined words, tags not rewritten).
        options: the masked option texts (re-joined words, tags not rewritten).
    """

    system: str
    instruction: str
    inputs: tuple[PromptInput, ...]
    question: str = ""
    options: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------------------------


class Protocol:
    """Base class of protocols. Members override the text normalisation, templates and sampling.

    The player layout, temporal grouping and masking/re-joining live here, so every protocol
    shares the paper's layout: frames, then question words, then each option's words.
    """

    name: str = ""

    # -- text ------------------------------------------------------------------------------
    def normalise_question(self, question: Question) -> str:
        """The question text the words are split from."""
        return question.question

    def normalise_option(self, question: Question, option: str) -> str:
        """One option's text the words are split from."""
        return option

    def word_segments(self, question: Question) -> list[list[str]]:
        """Words of the question, then of each option (the text players, grouped)."""
        segments = [split_words(self.normalise_question(question))]
        segments += [split_words(self.normalise_option(question, o)) for o in question.options]
        return segments

    def text_features(self, question: Question) -> tuple[Feature, ...]:
        """The text players: question words, then option 1's words, option 2's, … (SEED §3.1)."""
        segments = self.word_segments(question)
        features = [Feature(w, "question") for w in segments[0]]
        for k, words in enumerate(segments[1:]):
            features += [Feature(w, "answer", option=k) for w in words]
        return tuple(features)

    # -- players -------------------------------------------------------------------------
    @staticmethod
    def frame_groups(plan: FramePlan | None, temporal_unit: int = 1) -> list[tuple[int, ...]]:
        """Positions in ``plan.frames`` of each video player: runs of ``temporal_unit`` consecutive
        frames of the same input (an input's last run may be shorter)."""
        if temporal_unit < 1:
            raise ValueError(f"temporal_unit must be >= 1, got {temporal_unit}")
        if plan is None:
            return []
        groups: list[tuple[int, ...]] = []
        run: list[int] = []
        for pos, ref in enumerate(plan.frames):
            if run and (len(run) == temporal_unit or plan.frames[run[0]].input != ref.input):
                groups.append(tuple(run))
                run = []
            run.append(pos)
        if run:
            groups.append(tuple(run))
        return groups

    def n_video_players(self, plan: FramePlan | None, temporal_unit: int = 1) -> int:
        """Number of video players of ``plan`` with frames grouped by ``temporal_unit``."""
        return len(self.frame_groups(plan, temporal_unit))

    def features(self, question: Question, plan: FramePlan | None,
                 temporal_unit: int = 1) -> tuple[Feature, ...]:
        """All players: video players first, then :meth:`text_features`.

        A video player is named ``frame_<i>`` (global frame numbering, as the paper) or
        ``frame_<i>-<j>`` when it groups frames ``i..j``; its ``input`` and ``time`` are those of its
        first frame.
        """
        frames: list[Feature] = []
        for group in self.frame_groups(plan, temporal_unit):
            first = plan.frames[group[0]]
            name = f"frame_{group[0]}" if len(group) == 1 else f"frame_{group[0]}-{group[-1]}"
            frames.append(Feature(name, "video", input=first.input, time=float(first.time)))
        return tuple(frames) + self.text_features(question)

    # -- prompt --------------------------------------------------------------------------
    def system_prompt(self, question: Question) -> str:
        """The system prompt for ``question``'s benchmark."""
        return ""

    def instruction(self, question: str, options: Sequence[str]) -> str:
        """The user instruction built from the (masked) question and option strings."""
        raise NotImplementedError

    def rewrite(self, question: Question, plan: FramePlan | None, instruction: str) -> str:
        """Post-masking rewrite of the instruction (HD-EPIC tags in ``pollard2025``)."""
        return instruction

    def render(self, question: Question, plan: FramePlan | None, text_keep: np.ndarray) -> Prompt:
        """The prompt of one masked input.

        Args:
            question: the question.
            plan: its frame plan (``None``: text only).
            text_keep: bool over :meth:`text_features` (True = keep the word).

        Returns:
            The :class:`Prompt`; masked words are blanks in the re-joined text.
        """
        segments = self.word_segments(question)
        keep = np.asarray(text_keep, dtype=bool).reshape(-1)
        n_words = sum(len(s) for s in segments)
        if keep.shape[0] != n_words:
            raise ValueError(f"{question.qid}: text_keep has {keep.shape[0]} entries, "
                             f"the question has {n_words} text features")
        texts, offset = [], 0
        for words in segments:
            texts.append(join_words(words, keep[offset:offset + len(words)]))
            offset += len(words)
        instruction = self.rewrite(question, plan, self.instruction(texts[0], texts[1:]))
        return Prompt(self.system_prompt(question), instruction, self.prompt_inputs(question, plan),
                      question=texts[0], options=tuple(texts[1:]))

    @staticmethod
    def prompt_inputs(question: Question, plan: FramePlan | None) -> tuple[PromptInput, ...]:
        """One :class:`PromptInput` per kept input of ``plan``."""
        if plan is None:
            return ()
        result = []
        for i in plan.inputs:
            times = tuple(float(f.time) for f in plan.frames if f.input == i)
            result.append(PromptInput(question.inputs[i].label, len(times), times))
        return tuple(result)

    # -- frames --------------------------------------------------------------------------
    def frame_baseline(self, loader_family: str) -> str:
        """How a masked frame looks: ``"black"`` or ``"normalized_zero"``."""
        return "normalized_zero"

    def default_sampler(self, loader_family: str, benchmark: str | None = None) -> str:
        """The sampler used when none is given."""
        return "linspace"

    def plan_frames(self, question: Question, video_root: Path, n_frames: int,
                    sampler: str | None = None, loader_family: str | None = None) -> FramePlan:
        """Choose the frames of ``question`` (reads only the files' metadata)."""
        raise NotImplementedError

    def load_frames(self, question: Question, video_root: Path, plan: FramePlan,
                    size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """Decode ``plan``'s frames: one uint8 ``[T, H, W, 3]`` array per kept input, in order.

        Args:
            size: optional ``(height, width)``; frames are resized to it without keeping the aspect
                ratio (the paper's decord resize squashes).

        Raises:
            vqa_shap.video.VideoError: a file is missing or cannot be decoded (names the path).
        """
        from vqa_shap import video

        arrays = []
        for i in plan.inputs:
            inp = question.inputs[i]
            indices = [f.index for f in plan.frames if f.input == i]
            arrays.append(video.read_input(_input_path(video_root, inp), inp.kind, indices, size=size))
        return arrays


def _input_path(video_root: Path | str, inp: VisualInput) -> Path:
    return Path(video_root) / inp.path


# ---------------------------------------------------------------------------------------------
# pollard2025
# ---------------------------------------------------------------------------------------------

_SYSTEM_EXPERT = (
    "You are an expert video analyser, and your job is to answer the multiple choice question by "
    "giving only the letter identifying the answer. Do not give any other information. For example, "
    "acceptable answers are 'A' or 'B' or 'C' etc.. You must give an answer, even if you are not sure."
)
_SYSTEM_HD_EPIC = _SYSTEM_EXPERT + (
    " Videos are at 1 fps, and timestamps are MM:SS. Bounding boxes are in the format "
    "(ymin, xmin, ymax, xmax) relative to an image size of 1000x1000."
)
_SYSTEM_MVBENCH = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and "
    "movement of objects and the action and pose of persons. Based on your observations, select the "
    "best option that accurately addresses the question."
)
_INSTRUCTION_HEAD = "Select the best answer to the following multiple-choice question based on the video.\n"
_INSTRUCTION_TAIL = ("Answer with the option's letter from the given choices directly and only give the "
                     "best option. The best answer is: ")

#: Frame rate of a frame folder when the record gives none (MVBench TVQA folders are at 3 fps).
FRAME_FOLDER_FPS = 3.0


class Pollard2025(Protocol):
    """The protocol of Pollard & Wray (2025), as their public code implements it.

    * Text (SEED §1): EgoSchema/MVBench/LVBench (and any other benchmark) questions go through
      ``str.capitalize`` (first letter up, **all others lower-cased**), options through
      ``lower().strip().capitalize()``; HD-EPIC text keeps its case. A ``?`` is appended to a question
      whose last character is not ``?``.
    * Prompt (SEED §3.6): the shared instruction with letters ``(A) …``, the system prompt of the
      benchmark (EgoSchema/LVBench and unknown benchmarks share the "expert video analyser" prompt);
      for HD-EPIC the masked instruction then goes through :func:`parse_tags` with the plan's stride.
    * Frames (SEED §1): MVBench ``mvbench_bounds``, LVBench ``linspace`` to ``len - 2``, HD-EPIC
      ``hd_epic_windows``, EgoSchema (and other benchmarks) per model family.
    """

    name = "pollard2025"

    #: Benchmarks whose text keeps its case (tags such as ``<TIME …>`` are case sensitive).
    keep_case_benchmarks = ("hd-epic",)
    #: Frame rate the paper converted HD-EPIC videos to; HD-EPIC times are at this rate.
    hd_epic_fps = 1.0

    #: Masked-frame baseline per loader family (SEED §3.2). LLaVA-OneVision zeroes pixel values after
    #: normalisation as the paper's L-V; VideoLLaMA3 zeroes raw pixels (black frames) as the paper's VL3.
    #: Qwen2.5-VL: ``normalized_zero`` — the majority choice of the paper (L-V, LVA, VL2 zero the
    #: processor output), i.e. the dataset-mean colour rather than black.
    BASELINES = {
        "llava_onevision": "normalized_zero",
        "llava_video": "normalized_zero",
        "longva": "normalized_zero",
        "video_llama2": "normalized_zero",
        "internvideo": "normalized_zero",
        "qwen2_5_vl": "normalized_zero",
        "video_llama3": "black",
    }
    #: EgoSchema sampler per loader family (SEED §1.1); unknown families use ``linspace``.
    FAMILY_SAMPLERS = {
        "llava_onevision": "linspace",
        "llava_video": "linspace",
        "longva": "linspace",
        "qwen2_5_vl": "linspace",
        "video_llama2": "segment_midpoints",
        "internvideo": "uniform_edges",
        "video_llama3": "fps1_capped",
    }
    #: Benchmark-specific samplers (SEED §1.2–1.4), which take precedence over the family's.
    BENCHMARK_SAMPLERS = {"mvbench": "mvbench_bounds", "hd-epic": "hd_epic_windows", "lvbench": "linspace"}

    # -- text ------------------------------------------------------------------------------
    def normalise_question(self, question: Question) -> str:
        text = question.question
        if question.benchmark not in self.keep_case_benchmarks:
            text = text.capitalize()
        if not text or text[-1] != "?":
            text += "?"
        return text

    def normalise_option(self, question: Question, option: str) -> str:
        if question.benchmark in self.keep_case_benchmarks:
            return option
        return option.lower().strip().capitalize()

    # -- prompt --------------------------------------------------------------------------
    def system_prompt(self, question: Question) -> str:
        if question.benchmark == "hd-epic":
            return _SYSTEM_HD_EPIC
        if question.benchmark == "mvbench":
            return _SYSTEM_MVBENCH
        return _SYSTEM_EXPERT

    def instruction(self, question: str, options: Sequence[str]) -> str:
        lines = "".join(f"({option_letter(k)}) {o}\n" for k, o in enumerate(options))
        return f"{_INSTRUCTION_HEAD}{question}\nOptions:\n{lines}{_INSTRUCTION_TAIL}"

    def rewrite(self, question: Question, plan: FramePlan | None, instruction: str) -> str:
        if question.benchmark != "hd-epic":
            return instruction
        # Without a plan (text-only use) times are shown in the videos' own seconds.
        stride = plan.stride if plan is not None and plan.stride is not None else 1.0 / self.hd_epic_fps
        starts = {i.label: i.start for i in question.inputs if i.kind == "video" and i.start is not None}
        return parse_tags(instruction, stride, starts)

    # -- frames --------------------------------------------------------------------------
    def frame_baseline(self, loader_family: str) -> str:
        return self.BASELINES.get(loader_family, "normalized_zero")

    def default_sampler(self, loader_family: str | None, benchmark: str | None = None) -> str:
        if benchmark in self.BENCHMARK_SAMPLERS:
            return self.BENCHMARK_SAMPLERS[benchmark]
        return self.FAMILY_SAMPLERS.get(loader_family or "", "linspace")

    def plan_frames(self, question: Question, video_root: Path, n_frames: int,
                    sampler: str | None = None, loader_family: str | None = None) -> FramePlan:
        """Choose ``n_frames`` frames of ``question`` as the paper does (SEED §1).

        Args:
            question: the question; its ``inputs`` name files under ``video_root``.
            video_root: folder the input paths are relative to.
            n_frames: requested number of frames (HD-EPIC: in total over all inputs; short windows
                and images give fewer). The single-input samplers, applied to a question with several
                inputs, take ``n_frames`` from each input (an image input gives its one frame).
            sampler: one of :data:`SAMPLERS`; default :meth:`default_sampler` of the benchmark/family.
            loader_family: model family, picks the EgoSchema sampler.

        Raises:
            ValueError: unknown sampler or ``n_frames < 1``.
            vqa_shap.video.VideoError: an input file is missing or unreadable.
        """
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        sampler = sampler or self.default_sampler(loader_family, question.benchmark)
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
        if not question.inputs:
            return FramePlan(())
        if sampler == "hd_epic_windows":
            return self._plan_hd_epic(question, Path(video_root), n_frames)
        frames: list[FrameRef] = []
        for i, inp in enumerate(question.inputs):
            frames += self._plan_single(i, inp, Path(video_root), n_frames, sampler, question.benchmark)
        return FramePlan(tuple(frames))

    def _plan_single(self, i: int, inp: VisualInput, root: Path, n: int, sampler: str,
                     benchmark: str) -> list[FrameRef]:
        from vqa_shap import video

        path = _input_path(root, inp)
        if inp.kind == "frames":
            n_total = video.count_folder_frames(path)
            fps = inp.fps or FRAME_FOLDER_FPS
            if sampler == "mvbench_bounds":
                idx = mvbench_bounds(n, fps, n_total, _bound(inp), first_idx=1)
            else:  # other samplers index the files 1..n_total
                idx = [k + 1 for k in _simple(sampler, n_total, fps, n, benchmark)[0]]
            return [FrameRef(i, int(k), k / fps) for k in idx]
        info = video.video_info(path)
        if inp.kind == "image":
            if video.is_image_file(path):
                return [FrameRef(i, 0, float(inp.time or 0.0))]
            index = min(info.n_frames - 1, int((inp.time or 0.0) * info.fps))
            return [FrameRef(i, index, float(inp.time or 0.0))]
        if sampler == "mvbench_bounds":
            idx = mvbench_bounds(n, info.fps, info.n_frames - 1, _bound(inp), first_idx=0)
            return [FrameRef(i, int(k), k / info.fps) for k in idx]
        # a window [start, end] restricts the other samplers to its frames
        lo = 0 if inp.start is None else max(0, min(info.n_frames - 1, int(inp.start * info.fps)))
        hi = info.n_frames if inp.end is None else max(lo + 1, min(info.n_frames, int(inp.end * info.fps)))
        idx, times = _simple(sampler, hi - lo, info.fps, n, benchmark)
        return [FrameRef(i, lo + k, lo / info.fps + t) for k, t in zip(idx, times)]

    def _plan_hd_epic(self, question: Question, root: Path, n: int) -> FramePlan:
        from vqa_shap import video

        fps = self.hd_epic_fps
        videos = [(i, inp) for i, inp in enumerate(question.inputs) if inp.kind != "image"]
        images = [(i, inp) for i, inp in enumerate(question.inputs) if inp.kind == "image"]
        windows, file_fps = [], {}
        for i, inp in videos:
            info = video.video_info(_input_path(root, inp))
            file_fps[i] = info.fps
            start = int(inp.start) if inp.start is not None else -1
            end = int(inp.end) if inp.end is not None else -1
            if end - start < 1 / fps:
                end = start + 1 / fps
            windows.append((0.0, info.duration) if start == -1 or end == -1 else (float(start), float(end)))
        chosen, stride = hd_epic_windows(windows, len(images), n, fps)
        # Frame times as the paper's VideoLLaMA3 timestamps: the frame's 1-fps index in its file
        # divided by the stride (not relative to the window, unlike the <TIME> tags).
        refs: list[FrameRef] = []
        for v, (i, inp) in enumerate(videos):
            for pos, local in chosen:
                if pos == v:
                    index = int(round(local / fps * file_fps[i]))
                    refs.append(FrameRef(i, index, local / stride))
        for i, inp in images:
            path = _input_path(root, inp)
            local = int(int(inp.time or 0.0) * fps)
            if video.is_image_file(path):
                index = 0
            else:
                info = video.video_info(path)
                index = int(round(local / fps * info.fps))
            refs.append(FrameRef(i, index, local / stride))
        refs.sort(key=lambda f: f.input)  # inputs order; stable, so time order within an input
        return FramePlan(tuple(refs), stride=stride)


def _bound(inp: VisualInput) -> tuple[float, float] | None:
    if inp.start is None and inp.end is None:
        return None
    return (inp.start if inp.start is not None else -1e5, inp.end if inp.end is not None else 1e5)


def _simple(sampler: str, n_total: int, fps: float, n: int, benchmark: str) -> tuple[list[int], list[float]]:
    """(indices, times) of the single-input samplers over ``n_total`` frames at ``fps``."""
    if sampler == "fps1_capped":
        return fps1_capped(n_total, fps, n)
    if sampler == "linspace":
        idx = linspace(n_total, n, n_total - 2 if benchmark == "lvbench" else None)
    elif sampler == "segment_midpoints":
        idx = segment_midpoints(n_total, n)
    elif sampler == "uniform_edges":
        idx = uniform_edges(n_total, n)
    else:  # mvbench_bounds over a window
        idx = mvbench_bounds(n, fps, n_total - 1)
    return idx, [k / fps for k in idx]


def option_letter(k: int) -> str:
    """The letter of option ``k`` in prompts: 0 -> ``A``, 1 -> ``B``, …"""
    return chr(ord("A") + k)


_letter = option_letter  # kept for modules that imported the private name


PROTOCOLS: Registry = Registry("protocol", {"pollard2025": "vqa_shap.protocol:Pollard2025"},
                               base="vqa_shap.protocol:Protocol")


def get_protocol(name: str = "pollard2025") -> Protocol:
    """An instance of the protocol registered as ``name``.

    Raises:
        vqa_shap.errors.RegistryError: unknown name (the message lists the valid ones).
    """
    return PROTOCOLS.get(name)()
