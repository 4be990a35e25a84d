"""The site of a Hub-style attributions folder: its configs, the questions they were explained on and
:func:`~vqa_shap.view.site.build_site`. What ``vqa-shap view`` does, as a library function (the study
runner, :mod:`vqa_shap.study`, calls it too)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


@dataclass(frozen=True)
class FolderSite:
    """What :func:`site_from_folder` built: the site, the configs left out (``"<config>: <reason>"``,
    configs of another schema found in the folder but not named), the interactions configs shown on the
    question pages and those that match no attributions config."""

    site: Any
    skipped: tuple[str, ...] = ()
    interactions: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()


def site_from_folder(attributions: str | os.PathLike, out: str | os.PathLike, *,
                     configs: Sequence[str] | None = None, questions: str | os.PathLike | None = None,
                     questions_configs: Sequence[str] | None = None, video_root: str | os.PathLike | None = None,
                     report: str | os.PathLike | None = None, interactions: str | os.PathLike | None = None,
                     **site_kwargs: Any) -> FolderSite:
    """Build the static site of ``attributions`` into ``out``.

    Args:
        attributions: the attributions folder.
        out: the site folder (missing, empty, or a site an earlier view wrote).
        configs: attributions configs to show (default: every attributions config in the folder;
            a config of another schema is then skipped and listed, while a named one is an error).
        questions: Hub-style questions folder (question text, videos).
        questions_configs: the questions configs to read (default: those the attributions cards record).
        video_root: folder of the videos (needs ``questions``; without it frames are placeholders).
        report: a report folder whose top-level PNG figures and CSV tables the index shows (default:
            those at the top of ``attributions``, if any).
        interactions: a ``vqa-shap interactions`` folder; each question page shows the pairwise values of
            the same question, model and variant.
        **site_kwargs: passed to :func:`~vqa_shap.view.site.build_site` (``bootstrap``, ``title``, ``progress``).

    Raises:
        UsageError: a bad combination, unknown configs, missing questions configs, an unusable ``out``
            (all checked before any loading).
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.masking import experiment as maskbench
    from vqa_shap.errors import UsageError, VqaShapError
    from vqa_shap.view.interactions import match
    from vqa_shap.view.site import build_site, check_site_folder

    if video_root is not None and questions is None:
        raise UsageError("--video-root needs --questions (the questions name each video)")
    try:
        check_site_folder(out)
    except VqaShapError as exc:
        raise UsageError(str(exc)) from None
    chosen = _configs(attributions, configs)
    settings = {c: maskbench.attribution_settings(attributions, c) for c in chosen}
    qconfigs = _questions_configs(questions, questions_configs, settings)
    with hub._datasets_bars_off():  # one bar (the site's), not one per config loaded
        rows, skipped = _load(attributions, chosen, named=bool(configs))
        pairs = _interactions(interactions)
        by_config = _questions(questions, qconfigs, {c: settings[c] for c in rows})
    # a report's top-level figures and tables (per-question images live in sub-folders and are not linked)
    folder = Path(report or attributions)
    reports, tables = sorted(folder.glob("*.png")), sorted(folder.glob("*.csv"))
    shown, unmatched = match(pairs, rows)
    site = build_site(rows, out, questions=by_config, video_root=video_root,
                      settings={c: settings[c] for c in rows}, reports=reports, report_tables=tables,
                      interactions=shown, **site_kwargs)
    return FolderSite(site, tuple(skipped), tuple(sorted(set(pairs) - set(unmatched))), tuple(unmatched))


def _configs(attributions, configs: Sequence[str] | None) -> list[str]:
    """The configs to show, checked before any loading."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.errors import UsageError

    return hub.select_configs(attributions, configs, error=UsageError)


def _questions_configs(questions, qconfigs: Sequence[str] | None, settings) -> list[str]:
    """The questions configs to read (checked before any loading); ``[]`` without ``questions``."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.errors import UsageError

    if questions is None:
        return []
    wanted = set(qconfigs or ()) or {s.get("questions_config") for s in settings.values()}
    wanted.discard(None)
    if not wanted:
        raise UsageError("pass --questions-config (the attributions cards record no questions config)")
    available = hub.list_configs(questions)
    missing = sorted(wanted - set(available))
    if missing:
        raise UsageError(f"{questions}: no questions config(s) {missing}; available: {available}")
    return sorted(wanted)


def _load(attributions, configs: list[str], *, named: bool):
    """The configs' rows; a config of another schema is skipped (listed) unless the user named it."""
    from vqa_shap.attribution_checks import AttributionValueError
    from vqa_shap.errors import VqaShapError
    from vqa_shap.hub.folder import load_attributions

    rows, skipped = {}, []
    for config in configs:
        try:
            rows[config] = load_attributions(attributions, config)
        except AttributionValueError:  # bad values in an attributions config: refused, never skipped
            raise
        except (VqaShapError, ValueError, KeyError, TypeError) as exc:  # another schema, or rows that do not fit
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            if named:
                raise VqaShapError(f"{attributions}: config {config!r} cannot be shown: {reason}") from exc
            skipped.append(f"{config}: {reason}")
    if not rows:
        raise VqaShapError(f"{attributions}: no attributions config among {configs}")
    return rows, skipped


def _interactions(interactions) -> dict:
    """Config -> rows of every config of an interactions folder (``{}`` without one)."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.errors import VqaShapError
    from vqa_shap.view.interactions import load_interactions

    if interactions is None:
        return {}
    loaded = {c: load_interactions(interactions, c) for c in hub.list_configs(interactions)}
    wrong = sorted(c for c, rows in loaded.items() if rows is None)
    if wrong or not loaded:
        raise VqaShapError(f"{interactions}: not an interactions folder (configs without the players, pairs and "
                           f"interactions columns: {wrong or 'no configs at all'})")
    return loaded


def _questions(questions, qconfigs: list[str], settings) -> dict | None:
    """Attributions config -> qid -> question: the questions config its card records when loaded,
    else the only one loaded, else all of them (variants share qids, so each config gets its own)."""
    from vqa_shap.hub import folder as hub

    if questions is None:
        return None
    loaded = {qc: {q.qid: q for q in hub.load_questions(questions, qc)} for qc in qconfigs}
    merged = {qid: q for per in loaded.values() for qid, q in per.items()}
    return {c: loaded.get(s.get("questions_config")) or merged for c, s in settings.items()}
