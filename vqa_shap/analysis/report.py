"""Plots and per-question report images of attributions (matplotlib, Agg, PNG).

* :func:`plot_attribution_bars` — one question's normalised Shapley values per feature, coloured by
  modality;
* :func:`plot_modality_shares` — modality contribution and per-feature contribution (V/Q/A) per
  model × benchmark, with bootstrap intervals (the paper's table as a figure);
* :func:`plot_modality_violins` — distributions of normalised ground-truth values per modality;
* :func:`plot_question_report` — the paper's Figure 1 style: frames as thumbnails with borders
  coloured by their value, question and option words coloured by theirs, metrics in the margin.
  Frames are decoded with the protocol when the videos are available; otherwise placeholder tiles
  labelled with the frame time are drawn, and the image says so;
* :func:`plot_rank_violins` — distributions of frame-ranking agreement per group;
* the paper's remaining figures (:mod:`vqa_shap.analysis.paper_figures`): answer replacement across
  variants, words by |ψ|, heat maps of normalised values and the convergence check across budgets,
  each drawn when the configs given allow it;
* :func:`build_report` — all of the above for an attributions folder (``vqa-shap report``).

matplotlib is imported lazily, and only through its object-oriented API with the Agg canvas (no
``pyplot`` global state, so the caller's backend is never touched).
"""

from __future__ import annotations

import logging

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

# the figures live in plots (summary plots) and question_report (per question); re-exported here
from vqa_shap.analysis.paper_figures import PaperFigures, draw_paper_figures
from vqa_shap.analysis.plots import plot_attribution_bars, plot_modality_shares, plot_modality_violins, share_rows
from vqa_shap.analysis.question_report import frame_images, plot_question_report
from vqa_shap.schema.records import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import Protocol


@dataclass(frozen=True)
class ReportResult:
    """The images a report wrote (paths), per kind; ``notes``: ``"<config>/<qid>"`` -> why that
    question's frames are placeholders; ``paper``: the paper's figures and tables (``None`` when
    not asked for)."""

    out: Path
    shares: Path | None = None
    violins: Path | None = None
    bars: tuple[Path, ...] = ()
    questions: tuple[Path, ...] = ()
    skipped: tuple[str, ...] = ()
    index: Path | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    paper: PaperFigures | None = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _without_unknown_answers(attributions: Mapping[str, Sequence[Attribution]]):
    """``(attributions without the rows whose question has no known answer, one line per such row)``:
    every figure is drawn from the ground-truth signal, so those rows are listed, not drawn."""
    unanswered = [f"{c}/{a.qid}: no known answer (the figures need the ground truth)"
                  for c, attrs in attributions.items() for a in attrs if a.error is None and a.answer is None]
    if not unanswered:
        return attributions, []
    logging.getLogger(__name__).warning("%d question(s) without a known answer skipped: the report's figures "
                                        "need the ground truth", len(unanswered))
    return {c: [a for a in attrs if a.error is not None or a.answer is not None]
            for c, attrs in attributions.items()}, unanswered


def build_report(attributions: Mapping[str, Sequence[Attribution]], out: Path | str, *,
                 questions: Mapping[str, Question] | None = None,
                 questions_by_config: Mapping[str, Mapping[str, Question]] | None = None,
                 video_root: Path | str | None = None,
                 protocol: "Protocol | None" = None, max_questions: int | None = None,
                 bootstrap: int = 200, frame_settings: Mapping[str, Mapping[str, Any]] | None = None,
                 progress: bool = True, paper_figures: bool = True) -> ReportResult:
    """Write every figure for attributions grouped by config.

    Layout: ``<out>/modality_shares.png``, ``<out>/modality_violins.png``,
    ``<out>/<config>/bars/<qid>.png``, ``<out>/<config>/questions/<qid>.png``, the paper's figures
    and tables at the top of ``<out>`` (:func:`~vqa_shap.analysis.paper_figures.draw_paper_figures`)
    and ``<out>/index.md``.

    Args:
        attributions: config name -> its attribution rows.
        out: output folder.
        questions: qid -> question, to decode frames (with ``video_root``).
        questions_by_config: config -> (qid -> question), for configs whose questions differ under the
            same qids (variants of one benchmark share qids); a config listed here ignores ``questions``.
        video_root: where the videos are; without it frames are placeholder tiles.
        protocol: protocol used to re-plan frames (default ``pollard2025``).
        max_questions: per config, at most this many per-question images (``None``: all).
        bootstrap: resamples of the shares' intervals.
        frame_settings: config -> ``{"n_frames": …, "sampler": …, "shot_detector": …}`` the explain
            run used (default: the attribution's frame count and the protocol's sampler).
        progress: show a progress bar. Rows without a known answer are listed, not drawn.
        paper_figures: also draw the paper's answer-replacement, words, heat-map and convergence
            figures (where the configs allow; ``frame_settings`` gives their budgets).
    """
    from tqdm.auto import tqdm
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    attributions, skipped = _without_unknown_answers(attributions)
    groups = {}
    for config, attrs in attributions.items():
        label = config
        models = {a.model for a in attrs}
        benches = {a.benchmark for a in attrs}
        if len(models) == 1 and len(benches) == 1:
            label = f"{next(iter(models))} · {next(iter(benches))}"
            variants = {a.variant for a in attrs}
            if variants != {"original"}:
                label += " · " + ",".join(sorted(variants))
        groups[label] = list(attrs)
    shares = plot_modality_shares(share_rows(groups, bootstrap=bootstrap), out / "modality_shares.png")
    violins = plot_modality_violins(groups, out / "modality_violins.png")
    paper = (draw_paper_figures(attributions, out, settings=frame_settings, bootstrap=bootstrap)
             if paper_figures else None)
    bars, reports, notes = [], [], {}  # skipped: rows without a known answer, then error rows
    todo = [(c, a) for c, attrs in attributions.items()
            for a in (list(attrs) if max_questions is None else list(attrs)[:max_questions])]
    for config, attr in tqdm(todo, desc="report", unit="q", disable=not progress):
        if attr.error is not None:
            skipped.append(f"{config}/{attr.qid}: {attr.error}")
            continue
        base = out / _safe(config)
        bars.append(plot_attribution_bars(attr, base / "bars" / f"{_safe(attr.qid)}.png"))
        known = (questions_by_config or {}).get(config, questions)
        question = known.get(attr.qid) if known else None
        fs = (frame_settings or {}).get(config) or {}
        frames, note = frame_images(attr, question, protocol, video_root, n_frames=fs.get("n_frames"),
                                    sampler=fs.get("sampler"), shot_detector=fs.get("shot_detector"))
        if note:
            notes[f"{config}/{attr.qid}"] = note
        reports.append(plot_question_report(attr, base / "questions" / f"{_safe(attr.qid)}.png",
                                            frames=frames, note=note))
    index = out / "index.md"
    lines = ["# vqa-shap report", "", "![modality shares](modality_shares.png)", "",
             "![modality violins](modality_violins.png)", ""]
    if paper is not None:
        lines += list(paper.index)
        lines += ["## Notes on the paper's figures", ""] + [f"- {n}" for n in paper.notes] + [""] if paper.notes else []
    for p in reports:
        rel = p.relative_to(out)
        lines += [f"## {rel.parent.parent.name} / {p.stem}", "", f"![{p.stem}]({rel.as_posix()})", ""]
    if skipped:
        lines += ["## Skipped (error rows, rows without a known answer)", ""] + [f"- {s}" for s in skipped]
    index.write_text("\n".join(lines) + "\n")
    return ReportResult(out, shares, violins, tuple(bars), tuple(reports), tuple(skipped), index, notes, paper)


__all__ = ["ReportResult", "build_report"]
