"""The per-question report image (the paper's Figure 1 style) and the frames it shows.

Part of :mod:`vqa_shap.analysis.report` (which re-exports these names). matplotlib is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from vqa_shap.analysis.plots import DPI, VALUE_CMAP, gt_values, new_figure, save_png, text_color, value_color
from vqa_shap.protocol.words import option_letter
from vqa_shap.schema.records import Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol.base import Protocol


@dataclass(frozen=True)
class _Token:
    text: str
    value: float | None  # None: a label, not a player
    bold: bool = False


def _layout_lines(fig, tokens: Sequence[Sequence[_Token]], width_px: float, fontsize: float):
    """Break each paragraph of tokens into lines that fit ``width_px`` (measured with the renderer)."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    props = FontProperties(size=fontsize)
    bold = FontProperties(size=fontsize, weight="bold")
    space, _, _ = renderer.get_text_width_height_descent("M", props, ismath=False)
    lines = []
    for paragraph in tokens:
        line, x = [], 0.0
        for tok in paragraph:
            w, _, _ = renderer.get_text_width_height_descent(tok.text, bold if tok.bold else props, ismath=False)
            w += 6  # the coloured box's padding
            if line and x + w > width_px:
                lines.append(line)
                line, x = [], 0.0
            line.append((tok, x, w))
            x += w + space * 0.5
        lines.append(line)
    return lines


def frame_images(attr: Attribution, question: Question | None, protocol: "Protocol | None",
                 video_root: Path | str | None, *, n_frames: int | None = None,
                 sampler: str | None = None, shot_detector: str | None = None,
                 ) -> tuple[list[np.ndarray] | None, str | None]:
    """One decoded image per video player, or ``(None, reason)`` when frames are unavailable.

    The frames are re-planned as the attribution was computed (``n_frames``, ``sampler`` and, for
    shot players, ``shot_detector`` as the explain run used; ``n_frames`` defaults to the
    attribution's frame count) and checked against its players; a shot shows the middle of its
    sampled frames (:func:`~vqa_shap.analysis.ranking.player_frames`).
    """
    if question is None or video_root is None:
        return None, "no videos given (--questions/--video-root)"
    from vqa_shap.analysis.masking.players import frame_count, plan_for_attribution, temporal_unit_of
    from vqa_shap.analysis.ranking import player_frames

    if protocol is None:
        from vqa_shap.protocol import get_protocol

        protocol = get_protocol(attr.protocol if attr.protocol == "pollard2025" else "pollard2025")
    unit = temporal_unit_of(attr.features)
    try:
        layout = plan_for_attribution(protocol, question, attr, video_root, n_frames or frame_count([attr], unit),
                                      loader_family=attr.loader or None, temporal_unit=unit, sampler=sampler,
                                      shot_detector=shot_detector)
        frames = protocol.load_frames(question, Path(video_root), layout.plan)
    except Exception as exc:  # noqa: BLE001 - the report still shows the values, with a note
        return None, f"frames unavailable: {exc}"
    return player_frames(frames, protocol, layout.plan, unit, layout.groups), None


def plot_question_report(attr: Attribution, path: Path | str, *,
                         frames: Sequence[np.ndarray] | None = None, note: str | None = None) -> Path:
    """The paper's Figure-1-style report of one question.

    Args:
        attr: the attribution (without error).
        path: the PNG to write.
        frames: one RGB image per video player, or ``None`` for placeholder tiles labelled with the
            frame time.
        note: why frames are placeholders (shown on the image).
    """
    values = gt_values(attr)
    video = [i for i, f in enumerate(attr.features) if f.modality == "video"]
    fig = new_figure(_WIDTH_IN, 6.0)
    lines = _layout_lines(fig, _paragraphs(attr, values), (_TEXT_RIGHT - _TEXT_LEFT) * _WIDTH_IN * DPI, _FONTSIZE)

    # the frame grid sets the figure's height
    per_row = min(max(len(video), 1), 12)
    frame_rows = int(np.ceil(len(video) / per_row)) if video else 0
    tile_w_in = (_TEXT_RIGHT - _TEXT_LEFT) * _WIDTH_IN / per_row
    tile_h_in = tile_w_in * 0.75 + 0.25
    height_in = _HEADER_IN + frame_rows * tile_h_in + 0.3 + len(lines) * _LINE_H_IN + 0.8
    fig.set_size_inches(_WIDTH_IN, max(height_in, 4.5))

    fig.text(0.02, _y_frac(fig, 0.3), f"{attr.qid}   ·   {attr.model}   ·   {attr.benchmark}", fontsize=12,
             weight="bold", va="center")
    sub = f"{attr.estimator} budget {attr.budget}" if attr.estimator else ""
    if note or frames is None:
        sub += ("   ·   " if sub else "") + ("placeholder tiles: " + (note or "frames not available"))
    fig.text(0.02, _y_frac(fig, 0.58), sub, fontsize=8, color="dimgray", va="center")
    _draw_frames(fig, attr, values, video, frames, per_row, tile_w_in, tile_h_in)
    _draw_words(fig, lines, _HEADER_IN + frame_rows * tile_h_in + 0.3)
    _draw_margin(fig, attr, len(video))
    return save_png(fig, path)


# the report's geometry (inches, figure fractions) and text size
_WIDTH_IN = 14.0
_TEXT_LEFT, _TEXT_RIGHT = 0.02, 0.76  # the right margin holds the metrics
_FONTSIZE = 10
_LINE_H_IN = 0.28
_HEADER_IN = 0.7


def _y_frac(fig, inches_from_top: float) -> float:
    return 1 - inches_from_top / fig.get_figheight()


def _paragraphs(attr: Attribution, values: np.ndarray) -> list[list[_Token]]:
    """The text tokens: the question, then one paragraph per option (marked answer / predicted)."""
    feats = attr.features
    question_tokens = [_Token("Question:", None, bold=True)]
    question_tokens += [_Token(feats[i].name, float(values[i])) for i, f in enumerate(feats) if f.modality == "question"]
    paragraphs = [question_tokens]
    for k in range(attr.n_options):
        marks = []
        if k == attr.answer:
            marks.append("✓ answer")
        if attr.prediction is not None and k == attr.prediction:
            marks.append("◀ predicted")
        head = [_Token(f"({option_letter(k)})", None, bold=True)]
        if marks:
            head.append(_Token("[" + ", ".join(marks) + "]", None, bold=True))
        words = [_Token(f.name, float(values[i])) for i, f in enumerate(feats) if f.modality == "answer" and f.option == k]
        paragraphs.append(head + words)
    return paragraphs


def _draw_frames(fig, attr: Attribution, values: np.ndarray, video: Sequence[int],
                 frames: Sequence[np.ndarray] | None, per_row: int, tile_w_in: float, tile_h_in: float) -> None:
    """One tile per video player, its border coloured by its value (placeholder tiles without frames)."""
    feats = attr.features
    H = fig.get_figheight()
    for j, i in enumerate(video):
        r, c = divmod(j, per_row)
        left = _TEXT_LEFT + c * tile_w_in / _WIDTH_IN
        top_in = _HEADER_IN + r * tile_h_in
        ax = fig.add_axes([left + 0.004, _y_frac(fig, top_in + tile_w_in * 0.75), tile_w_in / _WIDTH_IN - 0.008,
                           (tile_w_in * 0.75 - 0.05) / H])
        color = value_color(values[i])
        if frames is not None:
            ax.imshow(np.asarray(frames[j]), aspect="auto")
        else:
            ax.set_facecolor("#d9d9d9")
            t = feats[i].time
            ax.text(0.5, 0.5, "no video\n" + (f"t={t:.1f}s" if t is not None else feats[i].name),
                    ha="center", va="center", fontsize=7, transform=ax.transAxes, color="dimgray")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(4)
        t = feats[i].time
        ax.set_xlabel(f"{feats[i].name}  {values[i]:+.2f}" + (f"  t={t:.1f}s" if t is not None else ""),
                      fontsize=6, labelpad=2)


def _draw_words(fig, lines, text_top_in: float) -> None:
    """The laid-out words, each player's word on a box coloured by its value."""
    from matplotlib.patches import Rectangle

    H = fig.get_figheight()
    ax_text = fig.add_axes([0, 0, 1, 1], facecolor="none")
    ax_text.set_axis_off()
    ax_text.set_xlim(0, _WIDTH_IN * DPI)
    ax_text.set_ylim(0, H * DPI)
    for li, line in enumerate(lines):
        y = (H - text_top_in - li * _LINE_H_IN) * DPI
        for tok, x, w in line:
            x0 = _TEXT_LEFT * _WIDTH_IN * DPI + x
            if tok.value is not None:
                ax_text.add_patch(Rectangle((x0, y - 0.1 * DPI), w, 0.22 * DPI, facecolor=value_color(tok.value),
                                            edgecolor="none"))
            ax_text.text(x0 + 3, y, tok.text, fontsize=_FONTSIZE, va="center", ha="left",
                         weight="bold" if tok.bold else "normal",
                         color="black" if tok.value is None else text_color(tok.value))


def _draw_margin(fig, attr: Attribution, n_video: int) -> None:
    """The right margin: ground-truth MC/PF, answer and prediction, option scores, the colour bar."""
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    from vqa_shap.analysis.metrics import question_metrics

    with np.errstate(invalid="ignore"):  # propagated errors (unused here) may be NaN/inf
        qm = question_metrics(attr).signal("Ground Truth")
    pred = attr.prediction
    margin = [
        "Ground-truth signal",
        "",
        "        V      Q      A",
        "MC  " + "  ".join(f"{v:5.2f}" for v in qm.mc),
        "PF  " + "  ".join(f"{v:5.2f}" for v in qm.pf),
        "",
        f"answer     {option_letter(attr.answer)}",
        f"predicted  {'?' if pred is None else option_letter(pred)}",
        f"features   {len(attr.features)} ({n_video} frames)",
    ]
    if attr.value_full is not None:
        margin += ["", "option scores (unmasked)"]
        cells = [f"{option_letter(k)} {v:+.2f}" for k, v in enumerate(attr.value_full)]
        margin += ["  ".join(cells[i:i + 3]) for i in range(0, len(cells), 3)]
    fig.text(0.79, _y_frac(fig, _HEADER_IN), "\n".join(margin), fontsize=9, family="monospace", va="top")
    cax = fig.add_axes([0.79, _y_frac(fig, _HEADER_IN + 0.17 * (len(margin) + 2) + 0.3), 0.18,
                        0.12 / fig.get_figheight()])
    ColorbarBase(cax, cmap=VALUE_CMAP, norm=Normalize(-1, 1), orientation="horizontal")
    cax.set_xlabel("ψ = φ / max|φ| (ground truth)", fontsize=7)
    cax.tick_params(labelsize=6)
