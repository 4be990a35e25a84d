"""Hub-style dataset folders: write them, load them back, push them to the Hugging Face Hub.

A folder is laid out as ``Dataset.push_to_hub(repo, config_name=C, split="test")`` lays out a
repository (a card ``README.md`` with YAML ``configs`` + ``<C>/test-*.parquet``), so
``load_dataset(folder, name=C, split="test")`` loads it offline as it will load from the Hub. Writes
are atomic; hidden entries are never listed, loaded or uploaded. The card is :mod:`vqa_shap.hub.card`,
pushing :mod:`vqa_shap.hub.push`; the layout: docs/schemas.md.
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
from vqa_shap.hub.card import README, SPLIT, config_dir, render_card
from vqa_shap.hub.card import _template, add_configs as _add_configs, card_meta as _meta
from vqa_shap.hub.card import check_kind as _check_kind, config_names as _config_names
from vqa_shap.hub.card import read_card_data as _read_card_data
from vqa_shap.hub.card import local_config_dirs as _local_config_dirs
from vqa_shap.hub.card import parquet_info as _parquet_info, shard_files as _shard_files
from vqa_shap.atomic_files import atomic_write_text, naming_path, swap_in_folder

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
    folder has (each once, in the order given), or all of them (checked before any loading).

    Raises:
        error: the folder has no configs, or ``configs`` names one it lacks (listing the available ones).
    """
    available = list_configs(folder)
    if not available:
        raise error(f"{folder}: no dataset configs found (expected a Hub-style attributions folder)")
    unknown = [c for c in configs or () if c not in available]
    if unknown:
        raise error(f"{folder}: unknown config(s) {unknown}; available: {available}")
    return list(dict.fromkeys(configs or available))  # a config named twice is read once


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
            ValueError, OSError) as exc:  # a shard changed behind the card's back, or the cache is unwritable
        _raise_cache_error(exc, folder, config)
        reason = str(exc.__cause__ or exc).splitlines()[0][:300]
        raise VqaShapError(f"{folder}: config {config!r}: its parquet shards cannot be loaded as the card "
                           f"describes them ({type(exc).__name__}: {reason})") from exc


def _raise_cache_error(exc: BaseException, folder: Path, config: str) -> None:
    """Raise a clear error when loading failed because the ``datasets`` cache folder cannot be written
    (read-only, full, no permission): the user's shards are fine, the cache is not."""
    import errno

    import datasets

    cache = Path(datasets.config.HF_DATASETS_CACHE)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM,
                                                      errno.EDQUOT):
            where = exc.filename if exc.filename is not None else cache
            if exc.filename is None or Path(os.path.abspath(exc.filename)).is_relative_to(os.path.abspath(cache)):
                raise VqaShapError(f"cannot write the datasets cache folder {where} while loading {folder} config "
                                   f"{config!r}: {exc.strerror or os.strerror(exc.errno)}; free space there or set "
                                   "HF_DATASETS_CACHE to a writable folder") from None
        exc = exc.__cause__ or exc.__context__


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
        RecordError: a row is not a usable question (:meth:`~vqa_shap.schema.records.Question.problem`).
    """
    from vqa_shap.errors import RecordError
    from vqa_shap.schema.records import QUESTION_COLUMNS, Question

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
    """The typed :class:`~vqa_shap.schema.records.Question` records of a questions config, in stored order."""
    from vqa_shap.schema.records import Question

    return [Question.from_row(row) for row in load_questions_dataset(folder, config)]


def load_attributions(folder: str | os.PathLike, config: str) -> list:
    """The typed :class:`~vqa_shap.schema.records.Attribution` rows of one attributions config.

    Raises:
        VqaShapError: the folder/config does not exist or is not an attributions dataset, or a row
            is inconsistent (named by its position and qid), holds a NaN or infinite value, or a qid
            repeats (:mod:`vqa_shap.attribution_checks`).
    """
    from vqa_shap.attribution_checks import check_attributions
    from vqa_shap.schema.records import Attribution

    dataset = load_config(folder, config)
    missing = [c for c in ("qid", "model", "shapley", "features", "answer") if c not in dataset.column_names]
    if missing:
        raise VqaShapError(f"{folder}: config {config!r} is not an attributions dataset (no column(s) {missing})")
    attributions = []
    for index, row in enumerate(dataset):
        try:
            attributions.append(Attribution.from_row(row))
        except (ValueError, TypeError, KeyError) as exc:  # a hand-edited or foreign dataset
            raise VqaShapError(f"{folder}: config {config!r}: row {index} (qid {row.get('qid')!r}): "
                               f"{str(exc) or type(exc).__name__}") from None
    check_attributions(f"{folder}: config {config!r}", attributions)
    return attributions


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

    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{config}-", dir=folder))
    try:
        with naming_path(target):  # a full disk while pyarrow writes names the config's folder
            num_shards = _write_shards(dataset, staging, max_shard_size, max_rows_per_shard, config)
        swap_in_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:  # no empty output folder is left behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with naming_path(folder / README):
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
    from vqa_shap.schema.arrow import question_features

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
