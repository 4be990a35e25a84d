"""The protocol base: frame plans, prompts, and the player layout every protocol shares.

A :class:`Protocol` fixes everything between a questions-dataset row and a model loader:

* the **word split** and **text normalisation** (which define the text players),
* the **player list** (:meth:`Protocol.features`): frames first, then question words, then each
  option's words — optionally grouping ``temporal_unit`` consecutive frames into one player,
* the **prompt** of a masked input (:meth:`Protocol.render`): masked words left as blanks, the
  instruction template with option letters, the system prompt per benchmark,
* **frame sampling** (:meth:`Protocol.plan_frames`) and decoding (:meth:`Protocol.load_frames`),
  and the **masked-frame baseline** per model family.

Per-family settings (baseline, sampler) are declared by each model family in its own loader module
(``declare_family(..., protocols={"<protocol name>": {...}})``, see :mod:`vqa_shap.loaders`); a
protocol reads them by family name from the core's declaration table (:mod:`vqa_shap.families`, read
from the family modules' source), which imports neither the loaders package nor a loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vqa_shap.protocol.words import join_words, split_words
from vqa_shap.schema.records import Feature, Question, VisualInput

#: How a masked frame can look: raw black pixels, or zeros after the processor's normalisation
#: (the dataset-mean colour).
BASELINES = ("normalized_zero", "black")



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
        """The text players: question words, then option 1's words, option 2's, … (the paper's order)."""
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
    #: Baseline and sampler of a family that declares none for this protocol.
    default_baseline = "normalized_zero"
    default_family_sampler = "linspace"

    def family_settings(self, loader_family: str | None) -> Mapping[str, str]:
        """What model family ``loader_family`` declares for this protocol (``baseline``, ``sampler``).

        Read from the families' declarations (:func:`vqa_shap.families.protocol_settings`), which
        imports no loader module; empty for an unknown family or ``None``.
        """
        from vqa_shap.families import protocol_settings

        return protocol_settings(self.name, loader_family)

    def frame_baseline(self, loader_family: str | None) -> str:
        """How a masked frame looks for ``loader_family``: ``"black"`` or ``"normalized_zero"``."""
        return self.family_settings(loader_family).get("baseline", self.default_baseline)

    def default_sampler(self, loader_family: str | None, benchmark: str | None = None) -> str:
        """The sampler used when none is given: the family's, else :attr:`default_family_sampler`."""
        return self.family_settings(loader_family).get("sampler", self.default_family_sampler)

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
            arrays.append(video.read_input(input_path(video_root, inp), inp.kind, indices, size=size))
        return arrays


def input_path(video_root: Path | str, inp: VisualInput) -> Path:
    """Where ``inp``'s file lives: its path relative to ``video_root``."""
    return Path(video_root) / inp.path

