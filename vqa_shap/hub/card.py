"""The layout and the dataset card of a Hub-style folder: where a config's files go, the card's YAML
(configs, ``dataset_info``, vqa-shap's own block) and its README rendered from ``cards/<kind>.md.j2``.

:mod:`vqa_shap.hub.folder` writes and reads folders with these; everything here is importable from there too.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from vqa_shap.errors import VqaShapError

#: The one split every config has.
SPLIT = "test"
#: ``card_vars`` keys that set folder-level YAML fields of the card instead of per-config variables.
CARD_DATA_KEYS = ("license", "pretty_name", "language", "task_categories", "tags", "size_categories")
#: YAML key under which vqa-shap keeps the folder's kind and each config's card variables.
META_KEY = "vqa_shap"
README = "README.md"


def config_dir(config: str) -> str:
    """The folder of ``config`` inside a repository (``push_to_hub`` puts ``"default"`` in ``data/``)."""
    return "data" if config == "default" else config


def data_files_pattern(config: str) -> str:
    """The ``data_files`` glob of ``config``'s test split, relative to the repository root."""
    return f"{config_dir(config)}/{SPLIT}-*.parquet"




def shard_files(folder: Path, config: str) -> list[Path]:
    """The parquet shards of ``config`` in ``folder``, in order."""
    return sorted((folder / config_dir(config)).glob(f"{SPLIT}-*.parquet"))


def local_config_dirs(folder: Path) -> list[str]:
    """Configs with shards on disk (``data/`` is the ``default`` config)."""
    names = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_dir() and not path.name.startswith(".") and any(path.glob(f"{SPLIT}-*.parquet")):
            names.append("default" if path.name == "data" else path.name)
    return names


def parquet_info(folder: Path, config: str):
    """``DatasetInfo`` of a written config, read from its shards' parquet metadata."""
    import pyarrow.parquet as pq
    from datasets import DatasetInfo, Features
    from datasets.splits import SplitDict, SplitInfo

    files = shard_files(folder, config)
    if not files:
        raise VqaShapError(f"{folder / config_dir(config)}: no {SPLIT}-*.parquet shards")
    metas = [pq.read_metadata(f) for f in files]
    num_rows = sum(m.num_rows for m in metas)
    num_bytes = sum(m.row_group(i).total_byte_size for m in metas for i in range(m.num_row_groups))
    download_size = sum(f.stat().st_size for f in files)
    splits = SplitDict()
    splits.add(SplitInfo(name=SPLIT, num_bytes=num_bytes, num_examples=num_rows))
    return DatasetInfo(
        config_name=config,
        features=Features.from_arrow_schema(pq.read_schema(files[0])),
        splits=splits,
        download_size=download_size,
        dataset_size=num_bytes,
    )


def template_kinds() -> list[str]:
    """The card kinds that have a template in ``cards/`` (``questions``, ``attributions``, ...)."""
    root = resources.files("vqa_shap.cards")
    return sorted(p.name[: -len(".md.j2")] for p in root.iterdir() if p.name.endswith(".md.j2"))


def _template(kind: str) -> str:
    path = resources.files("vqa_shap.cards").joinpath(f"{kind}.md.j2")
    if not path.is_file():
        raise VqaShapError(f"no card template for kind {kind!r} (cards/{kind}.md.j2); known kinds: "
                           f"{', '.join(template_kinds()) or 'none'}")
    return path.read_text(encoding="utf-8")


def read_card_data(readme: Path):
    from huggingface_hub import DatasetCard, DatasetCardData

    if not readme.is_file():
        return DatasetCardData()
    try:
        return DatasetCard.load(readme).data
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
        raise VqaShapError(f"{readme}: cannot read the dataset card's YAML: {exc}") from exc


def card_meta(card_data) -> dict[str, Any]:
    meta = card_data.get(META_KEY)
    return dict(meta) if isinstance(meta, Mapping) else {}


def folder_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The vqa-shap block of a folder's card YAML (``kind``, per-config ``configs`` variables);
    ``{}`` when the folder has no card.

    Raises:
        VqaShapError: the card's YAML cannot be read.
    """
    return card_meta(read_card_data(Path(folder) / README))


def config_vars(folder: str | os.PathLike, config: str) -> dict[str, Any]:
    """The ``card_vars`` a config was written with (e.g. explain's model, n_frames, sampler); ``{}``
    when the card records none."""
    return dict((folder_meta(folder).get("configs") or {}).get(config) or {})


def check_kind(card_data, kind: str, where: str) -> None:
    existing = card_meta(card_data).get("kind")
    if existing and existing != kind:
        raise VqaShapError(f"{where} holds a {existing!r} dataset; write {kind!r} configs to another folder/repo")


def config_names(card_data) -> list[str]:
    from datasets.utils.metadata import MetadataConfigs

    return list(MetadataConfigs.from_dataset_card_data(card_data))



def add_configs(card_data, kind: str, infos: Mapping[str, Any], card_vars: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge configs (their ``DatasetInfo`` and card variables) into ``card_data`` in place."""
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    if infos:
        MetadataConfigs({
            name: {"data_files": [{"split": SPLIT, "path": data_files_pattern(name)}]} for name in infos
        }).to_dataset_card_data(card_data)
        DatasetInfosDict(dict(infos)).to_dataset_card_data(card_data)
    meta = card_meta(card_data)
    meta["kind"] = kind
    per_config = dict(meta.get("configs") or {})
    for name, variables in card_vars.items():
        variables = dict(variables)
        for key in CARD_DATA_KEYS:
            if key in variables:
                card_data[key] = variables.pop(key)
        per_config[name] = variables
    meta["configs"] = dict(sorted(per_config.items()))
    card_data[META_KEY] = meta
    tags = list(card_data.get("tags") or [])
    card_data["tags"] = tags + [t for t in ("vqa-shap", kind) if t not in tags]



def render_card(card_data, **template_vars) -> str:
    """Render the README of a card's YAML with the template of its kind.

    The template gets ``card_data`` (the YAML text), every top-level YAML field, ``kind``, ``configs``
    (one dict per config: ``name``, ``path``, ``num_rows``, ``num_bytes``, ``download_size``,
    ``columns`` and its card variables under ``vars``), ``num_rows`` (total) and ``template_vars``
    (e.g. ``repo_id`` when pushing).
    """
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    meta = card_meta(card_data)
    kind = meta.get("kind") or "questions"
    infos = DatasetInfosDict.from_dataset_card_data(card_data)
    per_config = meta.get("configs") or {}
    configs = []
    for name, entry in MetadataConfigs.from_dataset_card_data(card_data).items():
        info = infos.get(name)
        split = info.splits.get(SPLIT) if info is not None and info.splits else None
        paths = [df.get("path") for df in entry.get("data_files") or [] if isinstance(df, Mapping)]
        configs.append({
            "name": name,
            "path": paths[0] if len(paths) == 1 else paths,
            "num_rows": split.num_examples if split is not None else None,
            "num_bytes": split.num_bytes if split is not None else None,
            "download_size": info.download_size if info is not None else None,
            "columns": list(info.features) if info is not None and info.features else [],
            "vars": dict(per_config.get(name) or {}),
        })
    total = sum(c["num_rows"] or 0 for c in configs)
    card = DatasetCard.from_template(card_data, template_str=_template(kind), kind=kind, configs=configs,
                                     num_rows=total, **template_vars)
    return str(card)

