"""Hub-style dataset folders: write them, load them back, push them to the Hugging Face Hub.

A *Hub-style folder* is laid out exactly as ``Dataset.push_to_hub(repo, config_name=C, split="test")``
lays out a repository, so ``datasets.load_dataset(folder, name=C, split="test")`` loads it offline
exactly as ``load_dataset("user/name", name=C, split="test")`` will load it once pushed::

    FOLDER/
      README.md                               # card: YAML `configs` + `dataset_info` for every config
      <C>/test-00000-of-0000N.parquet         # `data/` for a config named "default"
      <C2>/test-00000-of-00001.parquet

The README is rendered from a Jinja template ``cards/<kind>.md.j2`` (``kind="questions"`` for question
datasets, ``"attributions"`` for attribution tables); its YAML front matter is built with the public
classes of ``datasets``/``huggingface_hub`` (``DatasetCardData``, ``MetadataConfigs``,
``DatasetInfosDict``, ``SplitDict``). Per-config template variables (``card_vars``) are kept in the
YAML under the key ``vqa_shap`` so that adding a config re-renders the card for all of them.

Every config has the single split ``test``. No config is marked ``default``: with several configs,
``load_dataset(folder)`` without ``name`` raises ``ValueError`` listing them; with one config it loads it.

Writes are atomic: shards are written to a hidden temporary directory inside the folder and renamed
into place, and the README is replaced with ``os.replace``; a crash never leaves a half-written config.
Hidden entries (names starting with ``.``) are never listed, loaded or uploaded.

The card (layout, YAML, rendering) is :mod:`vqa_shap.hub_card`; pushing is :mod:`vqa_shap.hub_push`.
Their public names are importable from here too (``hub.push``, ``hub.render_card``, ``hub.SPLIT``, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from vqa_shap.errors import VqaShapError
from vqa_shap.hub_card import (  # noqa: F401 - the card's layout and functions are part of this module's API
    CARD_DATA_KEYS, META_KEY, README, SPLIT, config_dir, config_vars, data_files_pattern, folder_meta,
    render_card, template_kinds,
)
from vqa_shap.hub_card import _template, add_configs as _add_configs, card_meta as _meta
from vqa_shap.hub_card import check_kind as _check_kind, config_names as _config_names
from vqa_shap.hub_card import read_card_data as _read_card_data
from vqa_shap.hub_card import local_config_dirs as _local_config_dirs
from vqa_shap.hub_card import parquet_info as _parquet_info, shard_files as _shard_files
from vqa_shap.io import atomic_write_text, swap_in_folder

#: Shards are cut so no shard holds more than this much (uncompressed) data, as push_to_hub does.
DEFAULT_MAX_SHARD_SIZE = "500MB"

_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class ConfigInfo:
    """One config as written to a Hub-style folder.

    Attributes:
        name: the config name.
        path: the folder holding its parquet shards.
        num_rows: rows in its ``test`` split.
        num_shards: number of parquet files.
    """

    name: str
    path: Path
    num_rows: int
    num_shards: int



# --------------------------------------------------------------------------------------------------
# layout helpers


def _check_config_name(config: str) -> None:
    if not isinstance(config, str) or not _CONFIG_NAME.match(config):
        raise VqaShapError(
            f"invalid config name {config!r}: use letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    if config == "data":
        raise VqaShapError("invalid config name 'data': push_to_hub keeps the 'default' config's files in data/")



# --------------------------------------------------------------------------------------------------
# reading


def list_configs(folder: str | os.PathLike) -> list[str]:
    """The configs a Hub-style folder's card lists (what ``load_dataset`` sees), in card order.

    Args:
        folder: the Hub-style folder; a missing folder or README gives ``[]``.
    """
    return _config_names(_read_card_data(Path(folder) / README))


def select_configs(folder: str | os.PathLike, configs: Sequence[str] | None = None, *,
                   error: type[VqaShapError] = VqaShapError) -> list[str]:
    """The configs of a Hub-style attributions folder to read: ``configs``, checked against those the
    folder has, or all of them (checked before any loading).

    Raises:
        error: the folder has no configs, or ``configs`` names one it lacks (listing the available ones).
    """
    available = list_configs(folder)
    if not available:
        raise error(f"{folder}: no dataset configs found (expected a Hub-style attributions folder)")
    unknown = [c for c in configs or () if c not in available]
    if unknown:
        raise error(f"{folder}: unknown config(s) {unknown}; available: {available}")
    return list(configs or available)


def load_config(folder: str | os.PathLike, config: str):
    """Load one config's ``test`` split with ``datasets.load_dataset`` (offline, like the Hub copy).

    The local Arrow cache is always regenerated: datasets 5.2 keys the cache of a local Hub-style
    folder by folder *name*, config and card, not by the data files' paths or times, so two folders
    named alike (or a config rewritten in place with same-sized files) could silently return the
    other's rows.

    Args:
        folder: the Hub-style folder.
        config: the config name.

    Returns:
        The ``datasets.Dataset``.

    Raises:
        VqaShapError: the folder does not exist or does not list ``config`` (the message lists the configs).
    """
    folder = Path(folder)
    if folder.is_file():
        raise VqaShapError(f"{folder} is a file, not a dataset folder (give the folder that holds {README})")
    if not folder.is_dir():
        raise VqaShapError(f"dataset folder {folder} does not exist")
    configs = list_configs(folder)
    if config not in configs:
        raise VqaShapError(f"{folder}: no config {config!r}; configs: {', '.join(configs) or 'none'}")
    _check_shards(folder, config)
    import datasets

    try:
        with _datasets_bars_off():  # a command's output is its own: no "Generating test split" bars
            return datasets.load_dataset(str(folder), name=config, split=SPLIT, download_mode="force_redownload")
    except (datasets.exceptions.DatasetGenerationError, datasets.utils.info_utils.NonMatchingSplitsSizesError,
            ValueError, OSError) as exc:  # a shard changed behind the card's back
        reason = str(exc.__cause__ or exc).splitlines()[0][:300]
        raise VqaShapError(f"{folder}: config {config!r}: its parquet shards cannot be loaded as the card "
                           f"describes them ({type(exc).__name__}: {reason})") from exc


_SHARD_NAME = re.compile(rf"^{SPLIT}-(\d{{5}})-of-(\d{{5}})\.parquet$")


def _check_shards(folder: Path, config: str) -> None:
    """One clear line for a missing, extra, truncated or corrupt shard file of ``config``."""
    import pyarrow.parquet as pq

    where = folder / config_dir(config)
    files = _shard_files(folder, config)
    if not files:
        raise VqaShapError(f"{where}: config {config!r} has no {SPLIT}-*.parquet shard files")
    numbers = [_SHARD_NAME.match(f.name) for f in files]
    totals = {int(m.group(2)) for m in numbers if m}
    indices = sorted(int(m.group(1)) for m in numbers if m)
    if None in numbers or len(totals) != 1 or indices != list(range(totals.pop())):
        raise VqaShapError(f"{where}: config {config!r}: the shard files {', '.join(f.name for f in files)} are "
                           f"not one complete set {SPLIT}-0000i-of-0000n.parquet (an extra or missing file?)")
    for file in files:
        try:
            pq.read_metadata(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise VqaShapError(f"{file}: config {config!r}: not a readable parquet file "
                               f"({str(exc).splitlines()[0][:200]}); rewrite the config or restore the file") from exc


def load_questions_dataset(folder: str | os.PathLike, config: str):
    """A questions config as a ``datasets.Dataset``, checked to carry the questions columns.

    Raises:
        VqaShapError: the folder or config is missing, or the config is not a questions config.
        RecordError: a row is not a usable question (:meth:`~vqa_shap.schema.Question.problem`).
    """
    from vqa_shap.errors import RecordError
    from vqa_shap.schema import QUESTION_COLUMNS, Question

    dataset = load_config(folder, config)
    missing = [c for c in QUESTION_COLUMNS if c not in dataset.column_names]
    if missing:
        raise VqaShapError(f"{folder}: config {config!r} is not a questions config (no column(s) {missing})")
    for index, row in enumerate(dataset):  # a folder not made by `vqa-shap build` is checked too
        try:
            problem = Question.from_row(row).problem()
        except (TypeError, ValueError, KeyError) as exc:
            problem = "(row)", str(exc) or type(exc).__name__
        if problem:
            raise RecordError(f"{folder} config {config!r}", row.get("qid") or f"#{index}", *problem)
    return dataset


def load_questions(folder: str | os.PathLike, config: str) -> list:
    """The typed :class:`~vqa_shap.schema.Question` records of a questions config, in stored order."""
    from vqa_shap.schema import Question

    return [Question.from_row(row) for row in load_questions_dataset(folder, config)]


# --------------------------------------------------------------------------------------------------
# writing


def write_config(
    folder: str | os.PathLike,
    config: str,
    data,
    *,
    features,
    kind: str = "questions",
    card_vars: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    max_rows_per_shard: int | None = None,
) -> ConfigInfo:
    """Write (or replace) one config of a Hub-style folder and re-render its card for all configs.

    Args:
        folder: the Hub-style folder (created if missing). Other configs in it are kept.
        config: the config name (``"default"`` goes to ``data/`` as with ``push_to_hub``).
        data: a ``datasets.Dataset`` (cast to ``features`` if needed) or a sequence of row dicts.
        features: the ``datasets.Features`` of the rows (e.g. ``schema.question_features()``).
        kind: the card template ``cards/<kind>.md.j2``; one folder holds one kind.
        card_vars: JSON-serialisable template variables of this config (kept in the YAML under
            ``vqa_shap.configs.<config>``); keys in :data:`CARD_DATA_KEYS` set folder-level card fields.
        overwrite: replace ``config`` if it exists (otherwise that is an error).
        max_shard_size: largest (uncompressed) shard, as in ``push_to_hub``.
        max_rows_per_shard: optionally also cap the rows per shard.

    Returns:
        The written :class:`ConfigInfo`.

    Raises:
        VqaShapError: invalid config name, unknown kind, a kind clash with the folder, an existing config
            without ``overwrite``, rows not matching ``features``, or non-JSON ``card_vars``.
    """
    folder = Path(folder)
    _check_config_name(config)
    _template(kind)  # unknown kind fails before anything is written
    card_vars = _check_card_vars(card_vars)
    card_data = _read_card_data(folder / README)
    if (folder / README).exists() and not _meta(card_data).get("kind") and not overwrite:
        raise VqaShapError(f"{folder / README} exists and is not a vqa-shap dataset card; write to another "
                           "folder (or pass overwrite=True / --overwrite to replace it)")
    _check_kind(card_data, kind, str(folder))
    target = folder / config_dir(config)
    if not overwrite and (config in _config_names(card_data) or target.exists()):
        raise VqaShapError(
            f"{folder}: config {config!r} already exists; pass overwrite=True (--overwrite) to replace it")
    dataset = _as_dataset(data, features, config)

    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{config}-", dir=folder))
    try:
        num_shards = _write_shards(dataset, staging, max_shard_size, max_rows_per_shard, config)
        swap_in_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_card(folder, card_data, kind, {config: card_vars})
    return ConfigInfo(config, target, len(dataset), num_shards)


def write_questions(
    folder: str | os.PathLike,
    config: str,
    questions: Sequence,
    *,
    card_vars: Mapping[str, Any] | None = None,
    **kwargs,
) -> ConfigInfo:
    """Write typed questions as a ``questions`` config (schema ``schema.question_features()``).

    The card variables ``benchmark``, ``variant``, ``options`` (options per question, e.g. ``"5"`` or
    ``"4-5"``) and ``tasks`` (number of distinct tasks) are derived from the questions; ``card_vars``
    adds to or overrides them. Other keyword arguments go to :func:`write_config`.
    """
    from vqa_shap.schema import question_features

    counts = sorted({q.n_options for q in questions})
    derived: dict[str, Any] = {
        "benchmark": ", ".join(sorted({q.benchmark for q in questions})),
        "variant": ", ".join(sorted({q.variant for q in questions})),
        "options": "" if not counts else (str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"),
        "tasks": len({q.task for q in questions}),
        "task_categories": ["visual-question-answering"],
    }
    derived.update(card_vars or {})
    return write_config(folder, config, [q.to_row() for q in questions], features=question_features(),
                        kind="questions", card_vars=derived, **kwargs)


def _check_card_vars(card_vars: Mapping[str, Any] | None) -> dict[str, Any]:
    card_vars = dict(card_vars or {})
    try:
        # the YAML card holds them, so they must round-trip through plain data types
        return json.loads(json.dumps(card_vars))
    except (TypeError, ValueError) as exc:
        raise VqaShapError(f"card_vars must be JSON-serialisable: {exc}") from exc


def _as_dataset(data, features, config: str):
    import datasets

    if isinstance(data, datasets.Dataset):
        if data.features == features:
            return data
        try:
            return data.cast(features)
        except Exception as exc:  # noqa: BLE001 - report any cast failure the same way
            raise VqaShapError(f"config {config!r}: the dataset does not match the features: {exc}") from exc
    rows = list(data)
    expected = set(features)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise VqaShapError(f"config {config!r}: row {index} is a {type(row).__name__}, not a mapping")
        if set(row) != expected:
            ident = row.get("qid", index)
            missing, unknown = sorted(expected - set(row)), sorted(set(row) - expected)
            raise VqaShapError(f"config {config!r}: row {ident!r}: field(s) missing {missing}, unknown {unknown}")
    try:
        return datasets.Dataset.from_list(rows, features=features)
    except Exception as exc:  # noqa: BLE001 - arrow conversion errors name no row; add the config
        raise VqaShapError(f"config {config!r}: rows do not match the features: {exc}") from exc


@contextlib.contextmanager
def _datasets_bars_off():
    # datasets draws bars of its own (one per shard file written, "Generating test split" when
    # loading); our commands draw their own bars or none
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _write_shards(dataset, out: Path, max_shard_size, max_rows_per_shard, config: str) -> int:
    """Write ``<split>-iiiii-of-nnnnn.parquet`` shards as ``push_to_hub`` does; returns the shard count."""
    from datasets.features.features import require_decoding
    from datasets.table import embed_table_storage
    from datasets.utils.py_utils import convert_file_size_to_int
    from tqdm.auto import tqdm

    # the same size estimate and shard count rule as Dataset.push_to_hub
    num_shards = int(dataset._estimate_nbytes() / convert_file_size_to_int(max_shard_size)) + 1
    if max_rows_per_shard:
        num_shards = max(num_shards, -(-len(dataset) // max_rows_per_shard))
    num_shards = max(1, min(num_shards, len(dataset) or 1))
    # as push_to_hub: files behind Image/Video/Audio columns are embedded, not referenced by local path
    embed = any(require_decoding(f, ignore_decode_attribute=True) for f in dataset.features.values())
    with _datasets_bars_off():
        for index in tqdm(range(num_shards), desc=f"writing {config}", unit="shard", disable=None, leave=False):
            shard = dataset.shard(num_shards=num_shards, index=index, contiguous=True)
            if embed:
                shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
            shard.to_parquet(out / f"{SPLIT}-{index:05d}-of-{num_shards:05d}.parquet")
    return num_shards



def _write_card(folder: Path, card_data, kind: str, card_vars: Mapping[str, Mapping[str, Any]]) -> None:
    listed = set(_config_names(card_data))
    # the written configs, plus any config on disk the card misses (a crash between rename and card)
    names = list(card_vars) + [n for n in _local_config_dirs(folder) if n not in listed and n not in card_vars]
    _add_configs(card_data, kind, {n: _parquet_info(folder, n) for n in names}, card_vars)
    atomic_write_text(folder / README, render_card(card_data))


# Pushing lives in its own module; ``hub.push`` stays importable from here (imported last: it uses this module).
from vqa_shap.hub_push import PushResult, push  # noqa: E402,F401
