"""``pollard2025``: the protocol of "A Video Is Not Worth a Thousand Words" (Pollard & Wray, 2025).

It reproduces the paper's public code: text normalisation, system prompts and instruction per
benchmark, HD-EPIC tag rewriting, and frame sampling per benchmark (MVBench bounds, LVBench,
HD-EPIC windows) or, for EgoSchema and other benchmarks, per model family. docs/protocol.md
describes each choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from vqa_shap.protocol.base import FramePlan, FrameRef, Protocol, input_path
from vqa_shap.protocol.samplers import get_sampler, hd_epic_windows, mvbench_bounds
from vqa_shap.protocol.words import option_letter, parse_tags
from vqa_shap.schema.records import Question, VisualInput

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

    * Text: EgoSchema/MVBench/LVBench (and any other benchmark) questions go through
      ``str.capitalize`` (first letter up, **all others lower-cased**), options through
      ``lower().strip().capitalize()``; HD-EPIC text keeps its case. A ``?`` is appended to a question
      whose last character is not ``?``.
    * Prompt: the shared instruction with letters ``(A) …``, the system prompt of the
      benchmark (EgoSchema/LVBench and unknown benchmarks share the "expert video analyser" prompt);
      for HD-EPIC the masked instruction then goes through :func:`parse_tags` with the plan's stride.
    * Frames: MVBench ``mvbench_bounds``, LVBench ``linspace`` to ``len - 2``, HD-EPIC
      ``hd_epic_windows``, EgoSchema (and other benchmarks) per model family: the sampler and the
      masked-frame baseline each family module declares under ``protocols={"pollard2025": ...}``
      (:mod:`vqa_shap.loaders`); a family without settings gets ``linspace`` and ``normalized_zero``.
    """

    name = "pollard2025"

    #: Benchmarks whose text keeps its case (tags such as ``<TIME …>`` are case sensitive).
    keep_case_benchmarks = ("hd-epic",)
    #: Frame rate the paper converted HD-EPIC videos to; HD-EPIC times are at this rate.
    hd_epic_fps = 1.0

    #: Benchmark-specific samplers, which take precedence over the family's.
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
    def default_sampler(self, loader_family: str | None, benchmark: str | None = None) -> str:
        if benchmark in self.BENCHMARK_SAMPLERS:
            return self.BENCHMARK_SAMPLERS[benchmark]
        return super().default_sampler(loader_family, benchmark)

    def plan_frames(self, question: Question, video_root: Path, n_frames: int,
                    sampler: str | None = None, loader_family: str | None = None) -> FramePlan:
        """Choose ``n_frames`` frames of ``question`` as the paper does.

        Args:
            question: the question; its ``inputs`` name files under ``video_root``.
            video_root: folder the input paths are relative to.
            n_frames: requested number of frames (HD-EPIC: in total over all inputs; short windows
                and images give fewer). The single-input samplers, applied to a question with several
                inputs, take ``n_frames`` from each input (an image input gives its one frame).
            sampler: a name of :data:`~vqa_shap.protocol.samplers.SAMPLERS`; default
                :meth:`default_sampler` of the benchmark/family.
            loader_family: model family, picks the EgoSchema sampler.

        Raises:
            ValueError: unknown sampler or ``n_frames < 1``.
            vqa_shap.video.VideoError: an input file is missing or unreadable.
        """
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        sampler = sampler or self.default_sampler(loader_family, question.benchmark)
        get_sampler(sampler)  # unknown names fail here, before any file is read
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

        path = input_path(root, inp)
        if inp.kind == "frames":
            n_total = video.count_folder_frames(path)
            fps = inp.fps or FRAME_FOLDER_FPS
            if sampler == "mvbench_bounds":
                idx = mvbench_bounds(n, fps, n_total, _bound(inp), first_idx=1)
            else:  # other samplers index the files 1..n_total
                idx = [k + 1 for k in get_sampler(sampler)(n_total, fps, n, benchmark)[0]]
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
        idx, times = get_sampler(sampler)(hi - lo, info.fps, n, benchmark)
        return [FrameRef(i, lo + k, lo / info.fps + t) for k, t in zip(idx, times)]

    def _plan_hd_epic(self, question: Question, root: Path, n: int) -> FramePlan:
        from vqa_shap import video

        fps = self.hd_epic_fps
        videos = [(i, inp) for i, inp in enumerate(question.inputs) if inp.kind != "image"]
        images = [(i, inp) for i, inp in enumerate(question.inputs) if inp.kind == "image"]
        windows, file_fps = [], {}
        for i, inp in videos:
            info = video.video_info(input_path(root, inp))
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
            path = input_path(root, inp)
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
