"""The summary plots of a report and their matplotlib plumbing (Agg canvas, no pyplot).

Part of :mod:`vqa_shap.analysis.report` (which documents each figure and re-exports these names).
matplotlib is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vqa_shap.protocol.words import option_letter
from vqa_shap.schema.records import MODALITIES, Attribution, require_answer

#: Colour of each modality (bars, violins, legends).
MODALITY_COLORS = {"video": "#4C72B0", "question": "#DD8452", "answer": "#55A868"}
MODALITY_SHORT = {"video": "V", "question": "Q", "answer": "A"}
#: Diverging colour map of normalised values ψ ∈ [−1, 1] (blue negative, red positive).
VALUE_CMAP = "coolwarm"
DPI = 100


# --------------------------------------------------------------------------------------------
# matplotlib plumbing


def new_figure(width: float, height: float, layout: str | None = None):
    """A figure on an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path | str) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def value_color(value: float):
    """RGBA of a normalised value in the diverging colour map."""
    import matplotlib

    return matplotlib.colormaps[VALUE_CMAP]((float(np.clip(value, -1, 1)) + 1) / 2)


def text_color(value: float) -> str:
    """Black or white text, whichever reads on the colour of ``value``."""
    return "white" if abs(value) > 0.6 else "black"


def gt_values(attr: Attribution) -> np.ndarray:
    """Normalised ground-truth values ψ[:, answer] (the paper's plotted signal)."""
    from vqa_shap.analysis.metrics import normalise_columns

    return normalise_columns(attr.shapley)[:, require_answer(attr, "the ground-truth plot")]


# --------------------------------------------------------------------------------------------
# per-question bars


def plot_attribution_bars(attr: Attribution, path: Path | str) -> Path:
    """Bars of one question's normalised ground-truth Shapley values, coloured by modality.

    Args:
        attr: an attribution without error.
        path: the PNG to write.
    """
    values = gt_values(attr)
    n = len(values)
    fig = new_figure(min(max(6.0, 0.22 * n + 2), 60.0), 4.2)
    ax = fig.add_axes([0.06, 0.32, 0.92, 0.58])
    colors = [MODALITY_COLORS[f.modality] for f in attr.features]
    ax.bar(np.arange(n), values, color=colors, width=0.8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels([f.name for f in attr.features], rotation=90, fontsize=7)
    ax.set_ylabel("ψ (ground truth)")
    pred = "?" if attr.prediction is None else option_letter(attr.prediction)
    answer = "?" if attr.answer is None else option_letter(attr.answer)
    ax.set_title(f"{attr.qid} — {attr.model} — answer {answer}, predicted {pred}", fontsize=9)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=MODALITY_COLORS[m], label=m) for m in MODALITIES], fontsize=8,
              loc="upper right", ncols=3)
    return save_png(fig, path)


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
    fig = new_figure(min(max(7.0, 1.3 * n + 3), 40.0), 7.0)
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
    return save_png(fig, path)


def plot_modality_violins(groups: Mapping[str, Sequence[Attribution]], path: Path | str) -> Path:
    """Violins of the normalised ground-truth values per modality, one panel per group."""
    groups = {k: [a for a in v if a.error is None] for k, v in groups.items()}
    n = max(len(groups), 1)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = new_figure(3.4 * cols + 0.6, 3.0 * rows + 0.6, layout="constrained")
    for i, (label, attrs) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        data, positions, colors = [], [], []
        for k, modality in enumerate(MODALITIES):
            vals = np.concatenate([gt_values(a)[a.modality_mask(modality)] for a in attrs]) if attrs else np.array([])
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
    return save_png(fig, path)


def plot_rank_violins(groups: Mapping[str, Sequence[float]], path: Path | str, *,
                      statistic: str = "position-wise Spearman") -> Path:
    """Violins of per-question ranking agreement per group, x-range [−1, 1] (the paper's rank plot)."""
    fig = new_figure(7.0, 0.6 * max(len(groups), 1) + 1.4)
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
    return save_png(fig, path)
