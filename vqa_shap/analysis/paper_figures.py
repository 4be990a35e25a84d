"""The paper's remaining figures, drawn by ``vqa-shap report`` when its inputs allow.

* **answer replacement** (:func:`plot_answer_replacement`): ground-truth PF and MC of V/Q/A and
  accuracy across the variants of one model × benchmark (easy, original, hard_5 … by number of
  options), with bootstrap CIs — when at least two variants of one benchmark are given;
* **words** (:func:`plot_words`): the words carrying the most |ψ| per config;
* **heat map** (:func:`plot_heatmap`): normalised ground-truth values, questions × first V + 20 players;
* **convergence** (:func:`plot_convergence`): relative error of the ground-truth vector against the
  largest-budget run, per budget — when configs of one model × benchmark × variant × estimator
  differ in budget (e.g. ``vqa-shap explain … --budget 64 --name demo_b64``).

:func:`draw_paper_figures` writes them all (PNG + CSV + Markdown tables) at the top of a report
folder. The numbers come from :mod:`vqa_shap.analysis.paper_tables`; matplotlib is imported lazily
and used through the Agg canvas of :mod:`vqa_shap.analysis.plots`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vqa_shap.analysis import paper_tables as T
from vqa_shap.analysis.plots import MODALITY_COLORS, VALUE_CMAP, new_figure, save_png, value_color
from vqa_shap.atomic_files import atomic_write_text
from vqa_shap.schema.records import MODALITIES, Attribution

#: Words drawn in a words chart (the table lists every word).
TOP_WORDS = 20
#: Questions drawn in a heat map (the first ones, in the config's order).
HEATMAP_ROWS = 200


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _cell(value: Any, digits: int | None) -> str:
    """A table cell: floats with ``digits`` decimals (``None``: full precision), NaN/None empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}f}"
    return str(value)


def write_table(rows: Sequence[Mapping[str, Any]], csv_path: Path | None, md_path: Path | None = None) -> None:
    """Write ``rows`` (same keys) as CSV (full precision) and/or Markdown (4 decimals); NaN/None: empty."""
    columns = list(rows[0]) if rows else []

    def cells(digits: int | None) -> list[list[str]]:
        return [[_cell(v, digits) for v in r.values()] for r in rows]

    if csv_path is not None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells(None))
        atomic_write_text(csv_path, buf.getvalue())
    if md_path is not None:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells(4)]
        atomic_write_text(md_path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# answer replacement


def replacement_records(rows: Sequence[T.VariantRow]) -> list[dict[str, Any]]:
    """Flat table rows: run, n, accuracy and every value with its interval (``*_lo``, ``*_hi``)."""
    out = []
    for r in rows:
        rec: dict[str, Any] = dict(model=r.model, benchmark=r.benchmark, estimator=r.estimator, variant=r.variant,
                                   config=r.config,
                                   n_options=r.n_options, n_questions=r.n_questions, n_errors=r.n_errors)
        for key in ("accuracy",) + T.REPLACEMENT_KEYS:
            value = r.accuracy if key == "accuracy" else r.values[key]
            lo, hi = r.ci.get(key, (float("nan"), float("nan")))
            rec.update({key: None if value is None else float(value), f"{key}_lo": float(lo), f"{key}_hi": float(hi)})
        out.append(rec)
    return out


def _errorbar(ax, x, rows: Sequence[T.VariantRow], key: str, **kwargs) -> None:
    vals = np.array([np.nan if (v := (r.accuracy if key == "accuracy" else r.values[key])) is None else v
                     for r in rows], dtype=np.float64)
    lo = np.array([r.ci.get(key, (np.nan, np.nan))[0] for r in rows])
    hi = np.array([r.ci.get(key, (np.nan, np.nan))[1] for r in rows])
    err = np.nan_to_num(np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)]))
    ax.errorbar(x, vals, yerr=err, marker="o", capsize=3, **kwargs)


def plot_answer_replacement(rows: Sequence[T.VariantRow], path: Path | str) -> Path:
    """PF, MC (V/Q/A) and accuracy against the variant, for the variants of one model × benchmark × estimator."""
    fig = new_figure(13.0, 4.0, layout="constrained")
    x = np.arange(len(rows))
    labels = [f"{r.variant}\n{r.n_options} opts" for r in rows]
    for panel, (group, title) in enumerate((("pf", "Per-feature contribution"), ("mc", "Modality contribution"))):
        ax = fig.add_subplot(1, 3, panel + 1)
        for modality in MODALITIES:
            key = f"{group}_{modality[0]}"
            _errorbar(ax, x, rows, key, color=MODALITY_COLORS[modality], label=modality[0].upper())
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{title} (ground truth)", fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=7)
        ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 3)
    _errorbar(ax, x, rows, "accuracy", color="black")
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    if rows:
        fig.suptitle(f"Answer replacement — {rows[0].model} · {rows[0].benchmark} · {rows[0].estimator} "
                     f"(n = {', '.join(str(r.n_questions) for r in rows)}; 95% bootstrap CIs)", fontsize=10)
    return save_png(fig, path)


# ----------------------------------------------------------------------------------------------
# words, heat map, convergence


def plot_words(rows: Sequence[T.WordRow], path: Path | str, *, title: str, top: int = TOP_WORDS) -> Path:
    """Horizontal bars of the ``top`` words by total |ψ|, coloured by their mean signed ψ, counts beside."""
    rows = list(rows[:top])
    fig = new_figure(7.0, 0.28 * max(len(rows), 1) + 1.4, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r.total_abs for r in rows], color=[value_color(r.mean) for r in rows], edgecolor="grey", lw=0.4)
    for yi, r in zip(y, rows):
        ax.text(r.total_abs, yi, f"  n={r.count}, mean={r.mean_abs:.2f}", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([r.word for r in rows], fontsize=8)
    ax.set_xlim(0, max([r.total_abs for r in rows], default=1.0) * 1.35 or 1.0)
    ax.set_xlabel("total |ψ| (normalised ground-truth value); colour: mean ψ (blue −, red +)")
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def plot_heatmap(heat: T.Heatmap, path: Path | str, *, title: str) -> Path:
    """Questions × (first V video players + 20 text players) of ψ, blue −1 … red +1, hatched = no player."""
    import matplotlib

    n_rows, n_cols = heat.values.shape
    fig = new_figure(min(max(6.0, 0.22 * n_cols + 2.5), 40.0), min(max(3.0, 0.14 * n_rows + 1.8), 40.0),
                     layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    # cells without a player are transparent over a hatched background (grey would read as ψ = 0)
    cmap = matplotlib.colormaps[VALUE_CMAP].with_extremes(bad=(0, 0, 0, 0))
    ax.set_facecolor("white")
    ax.patch.set_hatch("///")
    ax.patch.set_edgecolor("#b0b0b0")
    image = ax.imshow(np.ma.masked_invalid(heat.values), cmap=cmap, vmin=-1, vmax=1, aspect="auto",
                      interpolation="nearest")
    if heat.n_video:
        ax.axvline(heat.n_video - 0.5, color="black", lw=1.0)
    ax.set_xticks(np.arange(n_cols))
    ax.set_xticklabels(heat.columns, rotation=90, fontsize=6)
    step = max(1, n_rows // 40)
    ax.set_yticks(np.arange(0, n_rows, step))
    ax.set_yticklabels(heat.qids[::step], fontsize=6)
    fig.colorbar(image, ax=ax, shrink=0.8, label="ψ (ground truth)")
    shown = f"{n_rows} of {heat.n_total}" if n_rows < heat.n_total else f"{n_rows}"
    ax.set_title(f"{title} — {shown} questions; video players | first {n_cols - heat.n_video} text players",
                 fontsize=9)
    return save_png(fig, path)


def plot_convergence(rows: Sequence[T.ConvergenceRow], path: Path | str) -> Path:
    """Relative error of the ground-truth vector per budget, one line per series, with CIs."""
    fig = new_figure(7.0, 4.2, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    series: dict[tuple, list[T.ConvergenceRow]] = {}
    for r in rows:
        series.setdefault((r.model, r.benchmark, r.variant, r.estimator, r.reference_budget), []).append(r)
    for (model, bench, variant, est, ref_budget), rs in series.items():
        vals = np.array([r.rel_error for r in rs])
        lo = np.array([r.rel_error_ci[0] for r in rs])
        hi = np.array([r.rel_error_ci[1] for r in rs])
        err = np.nan_to_num(np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)]))
        line = ax.errorbar([r.budget for r in rs], vals, yerr=err, marker="o", capsize=3,
                           label=f"{model} · {bench} · {variant} · {est} (ref. budget {ref_budget})")
        ax.plot([ref_budget], [0.0], marker="o", mfc="none", color=line[0].get_color())  # the reference itself
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("budget (evaluations per question)")
    ax.set_ylabel("‖φ_b − φ_ref‖ / ‖φ_ref‖ (ground truth)")
    ax.set_title("Convergence against the largest-budget run (mean over questions, 95% CI)", fontsize=9)
    ax.legend(fontsize=7)
    return save_png(fig, path)


# ----------------------------------------------------------------------------------------------
# all of them


@dataclass(frozen=True)
class PaperFigures:
    """What :func:`draw_paper_figures` wrote (paths under the report folder) and the index text.

    Attributes:
        answer_replacement, words, heatmaps, convergence: PNG figures.
        tables: CSV and Markdown tables.
        notes: runs left out of a figure, and why.
        index: Markdown sections for the report's ``index.md``.
    """

    answer_replacement: tuple[Path, ...] = ()
    words: tuple[Path, ...] = ()
    heatmaps: tuple[Path, ...] = ()
    convergence: Path | None = None
    tables: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    index: tuple[str, ...] = field(default_factory=tuple)


def _section(title: str, text: str, images: Sequence[Path], tables: Sequence[Path], out: Path) -> list[str]:
    lines = [f"## {title}", "", text, ""]
    lines += ["Tables: " + ", ".join(f"[{t.name}]({t.relative_to(out).as_posix()})" for t in tables), ""] if tables else []
    for img in images:
        lines += [f"![{img.stem}]({img.relative_to(out).as_posix()})", ""]
    return lines


def draw_paper_figures(attributions: Mapping[str, Sequence[Attribution]], out: Path | str, *,
                       settings: Mapping[str, Mapping[str, Any]] | None = None, bootstrap: int = 200,
                       seed: int = 0) -> PaperFigures:
    """Draw every figure the inputs allow at the top of ``out`` (PNG, CSV and Markdown).

    Files: ``answer_replacement.{csv,md}`` and ``answer_replacement__<model>__<benchmark>__<estimator>.png``;
    ``words.csv`` (every config's words) and ``words__<config>.{png,md}``; ``heatmap__<config>.png``;
    ``convergence.{csv,md,png}``.

    Args:
        attributions: config -> its rows.
        out: the report folder.
        settings: config -> its card settings: the ``estimator`` (else the rows'), and the ``budget``
            when the rows record none (:func:`~vqa_shap.analysis.paper_tables.run_info`).
        bootstrap: resamples of the intervals (0: none).
        seed: bootstrap seed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    infos, notes = [], []
    for config, attrs in attributions.items():
        info = T.run_info(config, list(attrs), (settings or {}).get(config))
        if info is None:
            notes.append(f"{config}: rows mix models, benchmarks or variants (or none): no paper figures")
        else:
            infos.append(info)
    index: list[str] = []
    replacement, tables, studied = _draw_replacement(attributions, infos, out, bootstrap, seed, index)
    words, word_tables = _draw_words(attributions, infos, out, index)
    heatmaps = [plot_heatmap(T.heatmap_matrix(attributions[i.config], max_rows=HEATMAP_ROWS),
                             out / f"heatmap__{_slug(i.config)}.png", title=i.config) for i in infos]
    if heatmaps:
        index += _section("Heat maps", "Normalised ground-truth values ψ, questions × the first V video players "
                          "and 20 text players (hatched: no player).", heatmaps, [], out)
    conv, conv_tables = _draw_convergence(attributions, infos, out, bootstrap, seed, index)
    if conv is not None:
        notes += T.series(infos)[1]
    kept = {(i.model, i.benchmark, i.variant, i.estimator): i.config for i in T.representatives(infos).values()}
    for info in infos:
        key = (info.model, info.benchmark, info.variant, info.estimator)
        if key[:2] + key[3:] in studied and kept[key] != info.config:
            notes.append(f"{info.config}: answer replacement uses {kept[key]} (larger budget) for "
                         f"{' · '.join(key)}")
    return PaperFigures(tuple(replacement), tuple(words), tuple(heatmaps), conv,
                        tuple(tables + word_tables + conv_tables), tuple(notes), tuple(index))


def _draw_replacement(attributions, infos, out: Path, bootstrap: int, seed: int, index: list[str]):
    rows = T.answer_replacement(attributions, infos, bootstrap=bootstrap, seed=seed)
    if not rows:
        return [], [], set()
    tables = [out / "answer_replacement.csv", out / "answer_replacement.md"]
    write_table(replacement_records(rows), *tables)
    groups: dict[tuple[str, str, str], list[T.VariantRow]] = {}
    for r in rows:
        groups.setdefault((r.model, r.benchmark, r.estimator), []).append(r)
    images = [plot_answer_replacement(rs, out / f"answer_replacement__{_slug(m)}__{_slug(b)}__{_slug(e)}.png")
              for (m, b, e), rs in groups.items()]
    index += _section("Answer replacement", "Ground-truth PF and MC of V/Q/A and accuracy per variant "
                      "(ordered by number of options), means over questions with 95% bootstrap CIs.",
                      images, tables, out)
    return images, tables, {(r.model, r.benchmark, r.estimator) for r in rows}


def _draw_words(attributions, infos, out: Path, index: list[str]):
    images, tables, records = [], [], []
    for info in infos:
        rows = T.word_table(attributions[info.config])
        if not rows:
            continue
        records += [dict(config=info.config, model=info.model, benchmark=info.benchmark, variant=info.variant,
                         word=r.word, count=r.count, mean_abs=r.mean_abs, total_abs=r.total_abs, mean=r.mean)
                    for r in rows]
        md = out / f"words__{_slug(info.config)}.md"
        write_table([dict(word=r.word, count=r.count, mean_abs=r.mean_abs, total_abs=r.total_abs, mean=r.mean)
                     for r in rows[:TOP_WORDS]], None, md)
        tables.append(md)
        images.append(plot_words(rows, out / f"words__{_slug(info.config)}.png",
                                 title=f"{info.model} · {info.benchmark} · {info.variant}: words by total |ψ|"))
    if records:
        tables.insert(0, out / "words.csv")
        write_table(records, out / "words.csv")
        index += _section("Words", f"Question and answer words by total |ψ| (normalised ground-truth value; "
                          f"lower-cased, punctuation and the excluded words {sorted(T.EXCLUDED_WORDS)} left out); "
                          f"the charts show the top {TOP_WORDS}.", images, tables, out)
    return images, tables


def _draw_convergence(attributions, infos, out: Path, bootstrap: int, seed: int, index: list[str]):
    rows = T.convergence(attributions, infos, bootstrap=bootstrap, seed=seed)
    if not rows:
        return None, []
    records = [dict(model=r.model, benchmark=r.benchmark, variant=r.variant, estimator=r.estimator, config=r.config,
                    budget=r.budget, reference=r.reference, reference_budget=r.reference_budget,
                    n_questions=r.n_questions, n_skipped=r.n_skipped, evaluations=r.evaluations, rel_error=r.rel_error,
                    rel_error_lo=r.rel_error_ci[0], rel_error_hi=r.rel_error_ci[1], mse=r.mse,
                    mse_lo=r.mse_ci[0], mse_hi=r.mse_ci[1]) for r in rows]
    tables = [out / "convergence.csv", out / "convergence.md"]
    write_table(records, *tables)
    image = plot_convergence(rows, out / "convergence.png")
    index += _section("Convergence", "Relative error of the ground-truth vector against the largest-budget run "
                      "of configs that differ only in budget (mean over questions, 95% bootstrap CI).",
                      [image], tables, out)
    return image, tables
