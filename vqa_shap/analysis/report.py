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

import numpy as np

from vqa_shap.schema import MODALITIES, Attribution, Question

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.protocol import Protocol

log = logging.getLogger(__name__)

#: Colour of each modality (bars, violins, legends).
MODALITY_COLORS = {"video": "#4C72B0", "question": "#DD8452", "answer": "#55A868"}
MODALITY_SHORT = {"video": "V", "question": "Q", "answer": "A"}
#: Diverging colour map of normalised values ψ ∈ [−1, 1] (blue negative, red positive).
VALUE_CMAP = "coolwarm"
DPI = 100


# --------------------------------------------------------------------------------------------
# matplotlib plumbing


def _figure(width: float, height: float, layout: str | None = None):
    """A figure on an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _value_color(value: float):
    """RGBA of a normalised value in the diverging colour map."""
    import matplotlib

    return matplotlib.colormaps[VALUE_CMAP]((float(np.clip(value, -1, 1)) + 1) / 2)


def _text_color(value: float) -> str:
    return "white" if abs(value) > 0.6 else "black"


def _gt_values(attr: Attribution) -> np.ndarray:
    """Normalised ground-truth values ψ[:, answer] (the paper's plotted signal)."""
    from vqa_shap.analysis.metrics import normalise_columns

    return normalise_columns(attr.shapley)[:, attr.answer]


def _letter(k: int) -> str:
    from vqa_shap.protocol import _letter as protocol_letter

    return protocol_letter(k)


# --------------------------------------------------------------------------------------------
# per-question bars


def plot_attribution_bars(attr: Attribution, path: Path | str) -> Path:
    """Bars of one question's normalised ground-truth Shapley values, coloured by modality.

    Args:
        attr: an attribution without error.
        path: the PNG to write.
    """
    values = _gt_values(attr)
    n = len(values)
    fig = _figure(min(max(6.0, 0.22 * n + 2), 60.0), 4.2)
    ax = fig.add_axes([0.06, 0.32, 0.92, 0.58])
    colors = [MODALITY_COLORS[f.modality] for f in attr.features]
    ax.bar(np.arange(n), values, color=colors, width=0.8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels([f.name for f in attr.features], rotation=90, fontsize=7)
    ax.set_ylabel("ψ (ground truth)")
    pred = "?" if attr.prediction is None else _letter(attr.prediction)
    ax.set_title(f"{attr.qid} — {attr.model} — answer {_letter(attr.answer)}, predicted {pred}", fontsize=9)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=MODALITY_COLORS[m], label=m) for m in MODALITIES], fontsize=8,
              loc="upper right", ncols=3)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# modality shares and violins


@dataclass(frozen=True)
class ShareRow:
    """One model × benchmark group of the shares figure (ground-truth signal)."""

    label: str
    n_questions: int
    accuracy: float | None
    mc: tuple[float, float, float]
    pf: tuple[float, float, float]
    mc_ci: tuple[tuple[float, float], ...] | None = None
    pf_ci: tuple[tuple[float, float], ...] | None = None


def share_rows(groups: Mapping[str, Sequence[Attribution]], *, bootstrap: int = 200, seed: int = 0) -> list[ShareRow]:
    """Ground-truth MC and PF (V, Q, A) per group, with bootstrap intervals (:mod:`vqa_shap.analysis.metrics`)."""
    from vqa_shap.analysis.metrics import subset_metrics

    rows = []
    for label, attrs in groups.items():
        with np.errstate(invalid="ignore"):  # propagated errors (unused here) may be NaN/inf
            gt = subset_metrics(list(attrs), bootstrap=bootstrap, seed=seed)[0]
        v = gt.values
        ci = gt.ci or {}

        def pick(group):
            return tuple(float(v[f"{group}_{k}"]) for k in "vqa")

        def pick_ci(group):
            if not ci:
                return None
            return tuple(tuple(ci[f"{group}_{k}"]) for k in "vqa")

        rows.append(ShareRow(label, gt.n_questions, gt.accuracy, pick("mc"), pick("pf"), pick_ci("mc"), pick_ci("pf")))
    return rows


def plot_modality_shares(rows: Sequence[ShareRow], path: Path | str) -> Path:
    """Grouped bars of MC and PF (V, Q, A) per model × benchmark, with bootstrap intervals."""
    n = max(len(rows), 1)
    fig = _figure(min(max(7.0, 1.3 * n + 3), 40.0), 7.0)
    x = np.arange(len(rows))
    width = 0.26
    for panel, (group, title) in enumerate((("mc", "Modality contribution (ground truth)"),
                                            ("pf", "Per-feature contribution (ground truth)"))):
        ax = fig.add_axes([0.08, 0.57 - 0.47 * panel, 0.70, 0.36])
        for k, modality in enumerate(MODALITIES):
            vals = np.array([getattr(r, group)[k] for r in rows], dtype=np.float64)
            err = None
            cis = [getattr(r, f"{group}_ci") for r in rows]
            if rows and all(c is not None for c in cis):
                lo = np.array([c[k][0] for c in cis])
                hi = np.array([c[k][1] for c in cis])
                err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
                err = np.nan_to_num(err)
            ax.bar(x + (k - 1) * width, np.nan_to_num(vals), width, yerr=err, capsize=2,
                   color=MODALITY_COLORS[modality], label=f"{MODALITY_SHORT[modality]} ({modality})")
            tops = vals if err is None else vals + err[1]
            for xi, val, top in zip(x + (k - 1) * width, vals, tops):
                if np.isfinite(val):
                    ax.text(xi, np.nan_to_num(top) + 0.02, f"{val:.2f}", ha="center", va="bottom", fontsize=6)
        ax.set_xticks(x)
        labels = [f"{r.label}\nn={r.n_questions}" + ("" if r.accuracy is None else f", acc={r.accuracy:.2f}")
                  for r in rows]
        ax.set_xticklabels(labels if panel == 1 else [""] * len(rows), fontsize=7)
        ax.set_ylim(0, 1.1)
        ax.set_title(title, fontsize=10)
        if panel == 0:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_modality_violins(groups: Mapping[str, Sequence[Attribution]], path: Path | str) -> Path:
    """Violins of the normalised ground-truth values per modality, one panel per group."""
    groups = {k: [a for a in v if a.error is None] for k, v in groups.items()}
    n = max(len(groups), 1)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = _figure(3.4 * cols + 0.6, 3.0 * rows + 0.6, layout="constrained")
    for i, (label, attrs) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        data, positions, colors = [], [], []
        for k, modality in enumerate(MODALITIES):
            vals = np.concatenate([_gt_values(a)[a.modality_mask(modality)] for a in attrs]) if attrs else np.array([])
            if vals.size:
                data.append(vals)
                positions.append(k)
                colors.append(MODALITY_COLORS[modality])
        if data:
            parts = ax.violinplot(data, positions=positions, showmedians=True, widths=0.8)
            for body, color in zip(parts["bodies"], colors):
                body.set_facecolor(color)
                body.set_alpha(0.7)
        ax.set_xticks(range(3))
        ax.set_xticklabels([MODALITY_SHORT[m] for m in MODALITIES])
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{label} (n={len(attrs)})", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("ψ (ground truth)")
    return _save(fig, path)


def plot_rank_violins(groups: Mapping[str, Sequence[float]], path: Path | str, *,
                      statistic: str = "position-wise Spearman") -> Path:
    """Violins of per-question ranking agreement per group, x-range [−1, 1] (the paper's rank plot)."""
    fig = _figure(7.0, 0.6 * max(len(groups), 1) + 1.4)
    ax = fig.add_axes([0.3, 0.18, 0.66, 0.72])
    labels = list(groups)
    data = [np.asarray([v for v in groups[k] if v is not None and np.isfinite(v)], dtype=np.float64) for k in labels]
    keep = [i for i, d in enumerate(data) if d.size]
    if keep:
        import matplotlib

        horizontal = ({"orientation": "horizontal"} if tuple(int(x) for x in matplotlib.__version__.split(".")[:2])
                      >= (3, 10) else {"vert": False})  # `vert` is deprecated from matplotlib 3.10
        ax.violinplot([data[i] for i in keep], positions=keep, showmedians=True, **horizontal)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([f"{k} (n={d.size})" for k, d in zip(labels, data)], fontsize=8)
    ax.set_xlim(-1, 1)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(statistic)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# per-question report (Figure 1 style)


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
                 sampler: str | None = None) -> tuple[list[np.ndarray] | None, str | None]:
    """One decoded image per video player, or ``(None, reason)`` when frames are unavailable.

    The frames are re-planned as the attribution was computed (``n_frames`` and ``sampler`` as the
    explain run used; ``n_frames`` defaults to the attribution's frame count) and checked against
    its players.
    """
    if question is None or video_root is None:
        return None, "no videos given (--questions/--video-root)"
    from vqa_shap.analysis.maskbench import frame_count, plan_for_attribution, temporal_unit_of
    from vqa_shap.analysis.ranking import player_frames

    if protocol is None:
        from vqa_shap.protocol import get_protocol

        protocol = get_protocol(attr.protocol if attr.protocol == "pollard2025" else "pollard2025")
    unit = temporal_unit_of(attr.features)
    try:
        plan, _ = plan_for_attribution(protocol, question, attr, video_root, n_frames or frame_count([attr], unit),
                                       loader_family=attr.loader or None, temporal_unit=unit, sampler=sampler)
        frames = protocol.load_frames(question, Path(video_root), plan)
    except Exception as exc:  # noqa: BLE001 - the report still shows the values, with a note
        return None, f"frames unavailable: {exc}"
    return player_frames(frames, protocol, plan, unit), None


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
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from vqa_shap.analysis.metrics import question_metrics

    values = _gt_values(attr)
    feats = attr.features
    video = [i for i, f in enumerate(feats) if f.modality == "video"]
    n_video = len(video)
    width_in = 14.0
    fig = _figure(width_in, 6.0)

    # -- text tokens: question, then one paragraph per option
    question_tokens = [_Token("Question:", None, bold=True)]
    question_tokens += [_Token(feats[i].name, float(values[i])) for i, f in enumerate(feats) if f.modality == "question"]
    paragraphs = [question_tokens]
    pred = attr.prediction
    for k in range(attr.n_options):
        marks = []
        if k == attr.answer:
            marks.append("✓ answer")
        if pred is not None and k == pred:
            marks.append("◀ predicted")
        head = [_Token(f"({_letter(k)})", None, bold=True)]
        if marks:
            head.append(_Token("[" + ", ".join(marks) + "]", None, bold=True))
        words = [_Token(f.name, float(values[i])) for i, f in enumerate(feats) if f.modality == "answer" and f.option == k]
        paragraphs.append(head + words)

    text_left, text_right = 0.02, 0.76  # the right margin holds the metrics
    fontsize = 10
    lines = _layout_lines(fig, paragraphs, (text_right - text_left) * width_in * DPI, fontsize)
    line_h_in = 0.28

    # -- frame grid
    per_row = min(max(n_video, 1), 12)
    frame_rows = int(np.ceil(n_video / per_row)) if n_video else 0
    tile_w_in = (text_right - text_left) * width_in / per_row
    tile_h_in = tile_w_in * 0.75 + 0.25
    header_in = 0.7
    height_in = header_in + frame_rows * tile_h_in + 0.3 + len(lines) * line_h_in + 0.8
    fig.set_size_inches(width_in, max(height_in, 4.5))
    H = fig.get_figheight()

    def y_frac(inches_from_top: float) -> float:
        return 1 - inches_from_top / H

    fig.text(0.02, y_frac(0.3), f"{attr.qid}   ·   {attr.model}   ·   {attr.benchmark}", fontsize=12,
             weight="bold", va="center")
    sub = f"{attr.estimator} budget {attr.budget}" if attr.estimator else ""
    if note or frames is None:
        sub += ("   ·   " if sub else "") + ("placeholder tiles: " + (note or "frames not available"))
    fig.text(0.02, y_frac(0.58), sub, fontsize=8, color="dimgray", va="center")

    # frames
    for j, i in enumerate(video):
        r, c = divmod(j, per_row)
        left = text_left + c * tile_w_in / width_in
        top_in = header_in + r * tile_h_in
        ax = fig.add_axes([left + 0.004, y_frac(top_in + tile_w_in * 0.75), tile_w_in / width_in - 0.008,
                           (tile_w_in * 0.75 - 0.05) / H])
        color = _value_color(values[i])
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

    # words
    text_top_in = header_in + frame_rows * tile_h_in + 0.3
    ax_text = fig.add_axes([0, 0, 1, 1], facecolor="none")
    ax_text.set_axis_off()
    ax_text.set_xlim(0, width_in * DPI)
    ax_text.set_ylim(0, H * DPI)
    for li, line in enumerate(lines):
        y = (H - text_top_in - li * line_h_in) * DPI
        for tok, x, w in line:
            x0 = text_left * width_in * DPI + x
            if tok.value is not None:
                ax_text.add_patch(Rectangle((x0, y - 0.1 * DPI), w, 0.22 * DPI, facecolor=_value_color(tok.value),
                                            edgecolor="none"))
            ax_text.text(x0 + 3, y, tok.text, fontsize=fontsize, va="center", ha="left",
                         weight="bold" if tok.bold else "normal",
                         color="black" if tok.value is None else _text_color(tok.value))

    # metrics margin
    with np.errstate(invalid="ignore"):  # propagated errors (unused here) may be NaN/inf
        qm = question_metrics(attr).signal("Ground Truth")
    margin = [
        "Ground-truth signal",
        "",
        "        V      Q      A",
        "MC  " + "  ".join(f"{v:5.2f}" for v in qm.mc),
        "PF  " + "  ".join(f"{v:5.2f}" for v in qm.pf),
        "",
        f"answer     {_letter(attr.answer)}",
        f"predicted  {'?' if pred is None else _letter(pred)}",
        f"features   {len(feats)} ({n_video} frames)",
    ]
    if attr.value_full is not None:
        margin += ["", "option scores (unmasked)"]
        cells = [f"{_letter(k)} {v:+.2f}" for k, v in enumerate(attr.value_full)]
        margin += ["  ".join(cells[i:i + 3]) for i in range(0, len(cells), 3)]
    fig.text(0.79, y_frac(header_in), "\n".join(margin), fontsize=9, family="monospace", va="top")

    # colour bar
    cax = fig.add_axes([0.79, y_frac(header_in + 0.17 * (len(margin) + 2) + 0.3), 0.18, 0.12 / H])
    ColorbarBase(cax, cmap=VALUE_CMAP, norm=Normalize(-1, 1), orientation="horizontal")
    cax.set_xlabel("ψ = φ / max|φ| (ground truth)", fontsize=7)
    cax.tick_params(labelsize=6)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# the whole report


@dataclass(frozen=True)
class ReportResult:
    """The images a report wrote (paths), per kind."""

    out: Path
    shares: Path | None = None
    violins: Path | None = None
    bars: tuple[Path, ...] = ()
    questions: tuple[Path, ...] = ()
    skipped: tuple[str, ...] = ()
    index: Path | None = None
    notes: Mapping[str, str] = field(default_factory=dict)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def build_report(attributions: Mapping[str, Sequence[Attribution]], out: Path | str, *,
                 questions: Mapping[str, Question] | None = None, video_root: Path | str | None = None,
                 protocol: "Protocol | None" = None, max_questions: int | None = None,
                 bootstrap: int = 200, frame_settings: Mapping[str, Mapping[str, Any]] | None = None,
                 progress: bool = True) -> ReportResult:
    """Write every figure for attributions grouped by config.

    Layout: ``<out>/modality_shares.png``, ``<out>/modality_violins.png``,
    ``<out>/<config>/bars/<qid>.png``, ``<out>/<config>/questions/<qid>.png`` and ``<out>/index.md``.

    Args:
        attributions: config name -> its attribution rows.
        out: output folder.
        questions: qid -> question, to decode frames (with ``video_root``).
        video_root: where the videos are; without it frames are placeholder tiles.
        protocol: protocol used to re-plan frames (default ``pollard2025``).
        max_questions: per config, at most this many per-question images (``None``: all).
        bootstrap: resamples of the shares' intervals.
        frame_settings: config -> ``{"n_frames": …, "sampler": …}`` the explain run used (default:
            the attribution's frame count and the protocol's sampler).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
    bars, reports, skipped, notes = [], [], [], {}
    todo = [(c, a) for c, attrs in attributions.items()
            for a in (list(attrs) if max_questions is None else list(attrs)[:max_questions])]
    for config, attr in tqdm(todo, desc="report", unit="q", disable=not progress):
        if attr.error is not None:
            skipped.append(f"{config}/{attr.qid}: {attr.error}")
            continue
        base = out / _safe(config)
        bars.append(plot_attribution_bars(attr, base / "bars" / f"{_safe(attr.qid)}.png"))
        question = questions.get(attr.qid) if questions else None
        fs = (frame_settings or {}).get(config) or {}
        frames, note = frame_images(attr, question, protocol, video_root, n_frames=fs.get("n_frames"),
                                    sampler=fs.get("sampler"))
        if note:
            notes[attr.qid] = note
        reports.append(plot_question_report(attr, base / "questions" / f"{_safe(attr.qid)}.png",
                                            frames=frames, note=note))
    index = out / "index.md"
    lines = ["# vqa-shap report", "", "![modality shares](modality_shares.png)", "",
             "![modality violins](modality_violins.png)", ""]
    for p in reports:
        rel = p.relative_to(out)
        lines += [f"## {rel.parent.parent.name} / {p.stem}", "", f"![{p.stem}]({rel.as_posix()})", ""]
    if skipped:
        lines += ["## Skipped (error rows)", ""] + [f"- {s}" for s in skipped]
    index.write_text("\n".join(lines) + "\n")
    return ReportResult(out, shares, violins, tuple(bars), tuple(reports), tuple(skipped), index, notes)
