"""Assembling work directories into attributions configs; merging the outputs of shards."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from vqa_shap.explain.explain_run import config_exists
from vqa_shap.explain.workdir import (
    SETTINGS_FILE, WORK_DIRNAME, ExplainError, ExplainInputError, ExplainSettings, WorkDir,
)


@dataclass(frozen=True)
class MergeResult:
    """One assembled attributions config.

    Attributes:
        folder: where the config was written.
        config: the config name.
        n_rows: rows written.
        n_errors: error rows among them.
        missing: qids of the questions config without a result (only with ``allow_partial``).
    """

    folder: Path
    config: str
    n_rows: int
    n_errors: int
    missing: tuple[str, ...] = ()


def _collect(work_dirs: Sequence[WorkDir]) -> tuple[ExplainSettings, dict[str, dict[str, Any]]]:
    """Settings (must agree) and rows by qid from work directories (a qid twice is an error)."""
    from vqa_shap.attribution_checks import check_row

    settings = work_dirs[0].settings()
    rows: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    duplicates: list[str] = []
    for work in work_dirs:
        # Shards on different machines may read the same videos from different paths.
        other = dataclasses.replace(work.settings(), video_root=settings.video_root)
        if other != settings:
            raise ExplainError(f"{work.path} and {work_dirs[0].path} were explained with different settings; "
                               "they cannot be merged")
        for qid, row in work.results().items():
            check_row(str(work.result_path(qid)), row)
            if qid in rows:
                duplicates.append(f"{qid!r} ({origin[qid]} and {work.path})")
            rows[qid] = row
            origin[qid] = work.path
    if duplicates:
        raise ExplainError(f"{len(duplicates)} questions were explained in more than one shard folder: "
                           + "; ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else ""))
    return settings, rows


def assemble(work_dirs: WorkDir | Sequence[WorkDir], out: str | os.PathLike, *,
             allow_partial: bool = False, overwrite: bool = False) -> MergeResult:
    """Write the attributions config of ``work_dirs`` into the Hub-style folder ``out``.

    Rows follow the questions order. Refuses when a question has no result (unless
    ``allow_partial``), when one was explained in two work directories, or when a result belongs to
    no question of the config.
    """
    import datasets

    from vqa_shap.hub import folder as hub
    from vqa_shap.schema.arrow import attribution_features

    if isinstance(work_dirs, WorkDir):
        work_dirs = [work_dirs]
    settings, rows = _collect(list(work_dirs))
    expected = settings.qids
    unknown = sorted(set(rows) - set(expected))
    if unknown:
        raise ExplainError(f"config {settings.config!r}: results for qids not in questions config "
                           f"{settings.questions_config!r}: {unknown[:5]}")
    missing = tuple(q for q in expected if q not in rows)
    if missing and not allow_partial:
        raise ExplainError(
            f"config {settings.config!r}: {len(missing)} of {len(expected)} questions have no result yet "
            f"(first: {', '.join(missing[:5])}); finish the missing shards (rerun explain with the same "
            "--rank/--world-size) or pass --allow-partial to write what exists"
        )
    features = attribution_features()
    ordered = [{c: rows[q].get(c) for c in features} for q in expected if q in rows]
    table = datasets.Dataset.from_list(ordered, features=features)
    hub.write_config(Path(out), settings.config, table, features=features, kind="attributions",
                     card_vars=settings.card_vars(), overwrite=overwrite)
    n_errors = sum(1 for r in ordered if r.get("error"))
    return MergeResult(folder=Path(out), config=settings.config, n_rows=len(ordered), n_errors=n_errors,
                       missing=missing)


def find_work_dirs(folder: str | os.PathLike) -> list[WorkDir]:
    """The work directories in ``folder``: itself if it is one, else ``<folder>/.work/*``."""
    folder = Path(folder)
    if (folder / SETTINGS_FILE).is_file():
        return [WorkDir(folder)]
    root = folder / WORK_DIRNAME
    return [WorkDir(p) for p in sorted(root.iterdir()) if (p / SETTINGS_FILE).is_file()] if root.is_dir() else []


def merge_shards(folders: Iterable[str | os.PathLike], *, out: str | os.PathLike | None = None,
                 configs: Sequence[str] | None = None, allow_partial: bool = False,
                 overwrite: bool = False) -> list[MergeResult]:
    """Assemble the shard outputs found in ``folders`` into attributions configs.

    Args:
        folders: output folders of the shards (or work directories themselves); the same folder
            when all shards shared one.
        out: destination Hub-style folder (default: the first folder).
        configs: only these configs (default: every config found).
        allow_partial: write what exists even when questions have no result.
        overwrite: replace existing configs in ``out``.

    Returns:
        One :class:`MergeResult` per config written.
    """
    unique: list[Path] = []
    for folder in map(Path, folders):
        if not folder.exists():
            raise ExplainInputError(f"{folder} does not exist")
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    if not unique:
        raise ExplainInputError("no folders to merge")
    by_config: dict[str, list[WorkDir]] = {}
    for folder in unique:
        for work in find_work_dirs(folder):
            by_config.setdefault(work.settings().config, []).append(work)
    if not by_config:
        raise ExplainInputError(f"no explain work directories in {', '.join(map(str, unique))} "
                           f"(expected {WORK_DIRNAME}/<config>/{SETTINGS_FILE})")
    wanted = list(configs) if configs else sorted(by_config)
    absent = [c for c in wanted if c not in by_config]
    if absent:
        raise ExplainInputError(f"no work files for config(s) {absent}; found: {sorted(by_config)}")
    destination = Path(out) if out is not None else unique[0]
    if not overwrite:
        taken = [c for c in wanted if config_exists(destination, c)]
        if taken:
            raise ExplainInputError(f"{destination} already has config(s) {taken}; pass --overwrite to replace")
    return [assemble(by_config[c], destination, allow_partial=allow_partial, overwrite=overwrite)
            for c in wanted]
