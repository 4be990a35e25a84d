"""Benchmark builders: official annotation layouts (and the paper's subset dumps) -> questions.

Each builder reads one source folder and returns a :class:`~vqa_shap.builders.base.BuildResult` of
typed :class:`~vqa_shap.schema.records.Question` s per config (``schema.config_name(benchmark, variant)``).
Names are listed in :data:`BUILDERS`; modules are imported only when a builder is asked for.

Example:
    >>> from vqa_shap.builders import SAMPLE_DIR, get_builder
    >>> result = get_builder("egoschema").build(SAMPLE_DIR)
    >>> sorted(result.configs)
    ['egoschema']
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vqa_shap.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from vqa_shap.builders.base import Builder

#: Every builder, by name.
BUILDERS: Registry = Registry(
    "builder",
    {
        "egoschema": "vqa_shap.builders.egoschema:EgoSchemaBuilder",
        "hd-epic": "vqa_shap.builders.hd_epic:HdEpicBuilder",
        "mvbench": "vqa_shap.builders.mvbench:MvBenchBuilder",
        "lvbench": "vqa_shap.builders.lvbench:LvBenchBuilder",
        "pollard2025": "vqa_shap.builders.pollard2025:Pollard2025Builder",
        "synthetic": "vqa_shap.builders.shapes:SyntheticBuilder",
    },
    base="vqa_shap.builders.base:Builder",
)

#: A tiny invented benchmark in the official EgoSchema layout (``questions.json`` +
#: ``subset_answers.json``), shipped with the package for demos and tests.
SAMPLE_DIR: Path = Path(__file__).resolve().parent / "sample"


def get_builder(name: str) -> "Builder":
    """A new instance of the builder registered as ``name``.

    Raises:
        RegistryError: unknown name (the message lists the valid names).
    """
    return BUILDERS.get(name)()


__all__ = ["BUILDERS", "SAMPLE_DIR", "get_builder"]
