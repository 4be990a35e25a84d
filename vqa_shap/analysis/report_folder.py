"""The report of a Hub-style attributions folder: its configs, the questions each one was explained on
(to decode frames) and :func:`~vqa_shap.analysis.report.build_report`. What ``vqa-shap report`` does,
as a library function (the study runner, :mod:`vqa_shap.study`, calls it too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence


def report_folder(attributions: str | os.PathLike, out: str | os.PathLike, *,
                  configs: Sequence[str] | None = None, questions: str | os.PathLike | None = None,
                  questions_config: str | None = None, video_root: str | os.PathLike | None = None,
                  **build_kwargs: Any):
    """Draw the report of ``attributions`` (a Hub-style folder) into ``out``.

    The report is drawn aside and swapped in (:func:`vqa_shap.output_folder.replace_folder`): a failed
    report leaves ``out`` as it was, and files the user added to an earlier report folder are kept.

    Args:
        attributions: the attributions folder.
        out: the report folder.
        configs: attributions configs to draw (default: every config in the folder).
        questions: Hub-style questions folder, to decode frames (with ``video_root``).
        questions_config: the questions config of every attributions config (default: the one each
            attributions card records; variants of one benchmark share qids, so each config reads its own).
        video_root: folder of the videos (frames are placeholders without it).
        **build_kwargs: passed to :func:`~vqa_shap.analysis.report.build_report` (``max_questions``,
            ``bootstrap``, ``progress``, ...).

    Returns:
        The :class:`~vqa_shap.analysis.report.ReportResult`.

    Raises:
        VqaShapError: no or unknown configs, no questions config to read, or ``out`` is a non-empty
            folder vqa-shap did not write.
    """
    import shutil

    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.masking import experiment as maskbench
    from vqa_shap.hub.folder import load_attributions
    from vqa_shap.analysis.report import build_report
    from vqa_shap.errors import VqaShapError
    from vqa_shap.atomic_files import naming_path
    from vqa_shap.output_folder import check_output_folder, replace_folder, staging_for

    out = Path(out)
    check_output_folder(out, "report")
    configs = hub.select_configs(attributions, configs)
    rows = {c: load_attributions(attributions, c) for c in configs}
    settings = {c: maskbench.attribution_settings(attributions, c) for c in configs}
    by_config = None
    if questions is not None:
        # each config reads its own questions config: variants of one benchmark share qids
        qconfig = {c: questions_config or s.get("questions_config") for c, s in settings.items()}
        if None in qconfig.values():
            raise VqaShapError("pass --questions-config (an attributions card records no questions config)")
        loaded = {qc: {q.qid: q for q in hub.load_questions(questions, qc)} for qc in set(qconfig.values())}
        by_config = {c: loaded[qc] for c, qc in qconfig.items()}
    staging = staging_for(out)
    try:
        with naming_path(out):  # a full disk while drawing: name the report folder (left as it was)
            result = build_report(rows, staging, questions_by_config=by_config, video_root=video_root,
                                  frame_settings=settings, **build_kwargs)
        replace_folder(staging, out, "report")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _rebased(result, staging, out)


def _rebased(value: Any, old: Path, new: Path) -> Any:
    """``value`` (a result dataclass, tuple or path) with the paths under ``old`` moved under ``new``."""
    import dataclasses

    if isinstance(value, Path):
        return new / value.relative_to(old) if value.is_relative_to(old) else value
    if isinstance(value, tuple):
        return tuple(_rebased(v, old, new) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _rebased(getattr(value, f.name), old, new)
                                             for f in dataclasses.fields(value) if f.init})
    return value
