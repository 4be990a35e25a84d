"""A benchmark into a Hub-style questions folder, and its extra-answer variants: what ``vqa-shap build``
and ``vqa-shap augment`` do, as library functions (the study runner, :mod:`vqa_shap.study`, calls them too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vqa_shap.errors import VqaShapError


@dataclass(frozen=True)
class BuiltFolder:
    """What :func:`build_folder` wrote.

    Attributes:
        result: the builder's :class:`~vqa_shap.builders.base.BuildResult` (questions and skipped records).
        configs: the ``hub.ConfigInfo`` of every config written, in build order.
        skip_report: where the skipped records were written, or ``None`` when none was skipped.
    """

    result: object
    configs: tuple
    skip_report: Path | None


def build_folder(bench: str, source: str | os.PathLike, out: str | os.PathLike, *,
                 subset: str | os.PathLike | None = None, on_error: str = "raise",
                 skip_report: str | os.PathLike | None = None, overwrite: bool = False) -> BuiltFolder:
    """Build a benchmark's source folder into the Hub-style questions folder ``out``.

    Args:
        bench: builder name (:data:`vqa_shap.builders.BUILDERS`).
        source: the benchmark's annotation folder.
        out: the questions folder (created, or extended with new configs).
        subset: optional CSV of ``q_uid`` s to keep (its file name is recorded in the card).
        on_error: ``"raise"`` or ``"skip"`` (see :meth:`~vqa_shap.builders.base.Builder.build`).
        skip_report: where to write skipped records (default ``out/skipped_<bench>.json``), when any.
        overwrite: replace configs that already exist in ``out``.

    Raises:
        VqaShapError: nothing was built, or a config exists and ``overwrite`` is off (checked before
            anything is written, so a refused build leaves ``out`` untouched).
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.builders import get_builder

    source, out = Path(source), Path(out)
    report = Path(skip_report) if skip_report is not None else out / f"skipped_{bench}.json"
    result = get_builder(bench).build(source, subset=subset, on_error=on_error)
    if result.skipped:  # always written when anything was skipped, even if nothing built
        result.write_skip_report(report)
    if not result.configs:
        raise VqaShapError(f"{source}: no {bench} questions were built"
                           + (f" ({result.skip_summary()}; report: {report})" if result.skipped else ""))
    clashes = sorted(set(hub.list_configs(out)) & set(result.configs))
    if clashes and not overwrite:
        raise VqaShapError(f"{out}: config(s) {', '.join(clashes)} already exist; pass --overwrite to replace them")
    card_vars = {"builder": bench}
    if subset is not None:
        card_vars["subset"] = Path(subset).name  # the file name only: no local paths in a public card
    infos = tuple(hub.write_questions(out, config, questions, card_vars=card_vars, overwrite=overwrite)
                  for config, questions in result.configs.items())
    return BuiltFolder(result, infos, report if result.skipped else None)


def augment_folder(folder: str | os.PathLike, config: str, variant: str, *, seed: int = 0, dedupe: bool = True,
                   overwrite: bool = False):
    """Write config ``<benchmark>_<variant>`` made from ``config`` of ``folder``; returns its ``ConfigInfo``.

    Args:
        folder: a Hub-style questions folder.
        config: the (original) config to derive the variant from.
        variant: ``easy`` or ``hard_<N>`` (:func:`~vqa_shap.builders.variants.make_variant`).
        seed: random seed (0, as the paper).
        dedupe: never add a distractor duplicating an option (``False``: the paper's sampling).
        overwrite: replace the variant config if it exists.
    """
    from vqa_shap.hub import folder as hub
    from vqa_shap.builders.variants import make_variant
    from vqa_shap.schema.records import config_name

    questions = hub.load_questions(folder, config)
    if not questions:
        raise VqaShapError(f"{folder}: config {config!r} has no questions")
    try:  # make_variant checks the questions are one benchmark's originals
        new = make_variant(questions, variant, seed=seed, dedupe=dedupe)
    except VqaShapError as error:
        raise VqaShapError(f"{folder}: config {config!r}: {error}") from error
    if not new:
        raise VqaShapError(f"{folder}: config {config!r} has no question with a known answer "
                           "(a variant keeps the correct option, so it needs the answers)")
    card_vars = {"source_config": config, "seed": seed, "dedupe": dedupe}
    return hub.write_questions(folder, config_name(new[0].benchmark, variant), new, card_vars=card_vars,
                               overwrite=overwrite)
