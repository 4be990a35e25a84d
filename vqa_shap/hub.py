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
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from vqa_shap.errors import VqaShapError

#: The one split every config has.
SPLIT = "test"
#: Shards are cut so no shard holds more than this much (uncompressed) data, as push_to_hub does.
DEFAULT_MAX_SHARD_SIZE = "500MB"
#: ``card_vars`` keys that set folder-level YAML fields of the card instead of per-config variables.
CARD_DATA_KEYS = ("license", "pretty_name", "language", "task_categories", "tags", "size_categories")
#: YAML key under which vqa-shap keeps the folder's kind and each config's card variables.
META_KEY = "vqa_shap"
README = "README.md"

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


@dataclass(frozen=True)
class PushResult:
    """What :func:`push` uploaded.

    Attributes:
        repo_id: the dataset repository (``user/name``).
        url: the repository's URL.
        configs: the configs uploaded from the local folder.
        replaced: those of ``configs`` that already existed on the Hub and were replaced.
        kept: configs that exist only on the Hub; kept, and listed in the uploaded card.
        commit_url: URL of the commit, when the Hub returned one.
    """

    repo_id: str
    url: str
    configs: tuple[str, ...]
    replaced: tuple[str, ...]
    kept: tuple[str, ...]
    commit_url: str | None


# --------------------------------------------------------------------------------------------------
# layout helpers


def config_dir(config: str) -> str:
    """The folder of ``config`` inside a repository (``push_to_hub`` puts ``"default"`` in ``data/``)."""
    return "data" if config == "default" else config


def data_files_pattern(config: str) -> str:
    """The ``data_files`` glob of ``config``'s test split, relative to the repository root."""
    return f"{config_dir(config)}/{SPLIT}-*.parquet"


def _check_config_name(config: str) -> None:
    if not isinstance(config, str) or not _CONFIG_NAME.match(config):
        raise VqaShapError(
            f"invalid config name {config!r}: use letters, digits, '_', '-', '.', starting with a letter or digit"
        )
    if config == "data":
        raise VqaShapError("invalid config name 'data': push_to_hub keeps the 'default' config's files in data/")


def _shard_files(folder: Path, config: str) -> list[Path]:
    return sorted((folder / config_dir(config)).glob(f"{SPLIT}-*.parquet"))


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


def _read_card_data(readme: Path):
    from huggingface_hub import DatasetCard, DatasetCardData

    if not readme.is_file():
        return DatasetCardData()
    try:
        return DatasetCard.load(readme).data
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
        raise VqaShapError(f"{readme}: cannot read the dataset card's YAML: {exc}") from exc


def _meta(card_data) -> dict[str, Any]:
    meta = card_data.get(META_KEY)
    return dict(meta) if isinstance(meta, Mapping) else {}


def folder_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The vqa-shap block of a folder's card YAML (``kind``, per-config ``configs`` variables);
    ``{}`` when the folder has no card.

    Raises:
        VqaShapError: the card's YAML cannot be read.
    """
    return _meta(_read_card_data(Path(folder) / README))


def config_vars(folder: str | os.PathLike, config: str) -> dict[str, Any]:
    """The ``card_vars`` a config was written with (e.g. explain's model, n_frames, sampler); ``{}``
    when the card records none."""
    return dict((folder_meta(folder).get("configs") or {}).get(config) or {})


def _check_kind(card_data, kind: str, where: str) -> None:
    existing = _meta(card_data).get("kind")
    if existing and existing != kind:
        raise VqaShapError(f"{where} holds a {existing!r} dataset; write {kind!r} configs to another folder/repo")


def _config_names(card_data) -> list[str]:
    from datasets.utils.metadata import MetadataConfigs

    return list(MetadataConfigs.from_dataset_card_data(card_data))


# --------------------------------------------------------------------------------------------------
# reading


def list_configs(folder: str | os.PathLike) -> list[str]:
    """The configs a Hub-style folder's card lists (what ``load_dataset`` sees), in card order.

    Args:
        folder: the Hub-style folder; a missing folder or README gives ``[]``.
    """
    return _config_names(_read_card_data(Path(folder) / README))


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
    """
    from vqa_shap.schema import QUESTION_COLUMNS

    dataset = load_config(folder, config)
    missing = [c for c in QUESTION_COLUMNS if c not in dataset.column_names]
    if missing:
        raise VqaShapError(f"{folder}: config {config!r} is not a questions config (no column(s) {missing})")
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
        _swap_in(staging, target)
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
    # datasets draws one bar per shard file; we draw one bar over the shards instead
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


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames only (the old copy is deleted last)."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _parquet_info(folder: Path, config: str):
    """``DatasetInfo`` of a written config, read from its shards' parquet metadata."""
    import pyarrow.parquet as pq
    from datasets import DatasetInfo, Features
    from datasets.splits import SplitDict, SplitInfo

    files = _shard_files(folder, config)
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


def _local_config_dirs(folder: Path) -> list[str]:
    """Configs with shards on disk (``data/`` is the ``default`` config)."""
    names = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_dir() and not path.name.startswith(".") and any(path.glob(f"{SPLIT}-*.parquet")):
            names.append("default" if path.name == "data" else path.name)
    return names


def _add_configs(card_data, kind: str, infos: Mapping[str, Any], card_vars: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge configs (their ``DatasetInfo`` and card variables) into ``card_data`` in place."""
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    if infos:
        MetadataConfigs({
            name: {"data_files": [{"split": SPLIT, "path": data_files_pattern(name)}]} for name in infos
        }).to_dataset_card_data(card_data)
        DatasetInfosDict(dict(infos)).to_dataset_card_data(card_data)
    meta = _meta(card_data)
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


def _write_card(folder: Path, card_data, kind: str, card_vars: Mapping[str, Mapping[str, Any]]) -> None:
    listed = set(_config_names(card_data))
    # the written configs, plus any config on disk the card misses (a crash between rename and card)
    names = list(card_vars) + [n for n in _local_config_dirs(folder) if n not in listed and n not in card_vars]
    _add_configs(card_data, kind, {n: _parquet_info(folder, n) for n in names}, card_vars)
    _atomic_write_text(folder / README, render_card(card_data))


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

    meta = _meta(card_data)
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


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------------
# pushing


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    overwrite: bool = False,
    token: str | None = None,
    private: bool = False,
    api=None,
    commit_message: str | None = None,
) -> PushResult:
    """Upload a Hub-style folder to a dataset repository on the Hugging Face Hub.

    Creates the repository if needed (``create_repo(repo_type="dataset", exist_ok=True)``), lists its
    files and refuses to replace any config it already has unless ``overwrite``. Configs that exist only
    on the Hub are kept, and the uploaded card lists them together with the local ones (its usage
    snippet names ``repo_id``). Replaced configs lose their old shards in the same commit, so a config
    that shrinks to fewer shards leaves no stale file behind. One ``upload_folder`` call = one commit.

    Args:
        folder: the Hub-style folder (as written by :func:`write_config`).
        repo_id: ``user/name`` (or ``org/name``).
        overwrite: allow replacing configs that already exist on the Hub.
        token: a Hugging Face token; by default ``HF_TOKEN`` or the cached login. Never printed or logged.
        private: create the repository as private (only when it does not exist yet).
        api: an ``huggingface_hub.HfApi`` (tests pass a fake one); by default ``HfApi()``.
        commit_message: the commit message.

    Raises:
        VqaShapError: nothing to push, no token, offline mode, the Hub refused or could not be reached,
            or a config exists on the Hub and ``overwrite`` is False (the message names it).
    """
    folder = Path(folder)
    card_data = _read_card_data(folder / README)
    local = _config_names(card_data)
    if not local:
        raise VqaShapError(f"{folder}: no configs to push (no {README} listing configs)")
    missing = [c for c in local if not _shard_files(folder, c)]
    if missing:
        raise VqaShapError(f"{folder}: config(s) {missing} are listed in {README} but have no parquet shards")
    kind = _meta(card_data).get("kind") or "questions"

    import huggingface_hub

    token = token if token is not None else huggingface_hub.get_token()
    if not token:
        raise VqaShapError("not logged in to the Hugging Face Hub: set HF_TOKEN or run `hf auth login`")
    api = api if api is not None else huggingface_hub.HfApi()

    with _hub_errors(repo_id, token):
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=token)
        remote_files = list(api.list_repo_files(repo_id, repo_type="dataset", token=token))
        remote_card = None
        if README in remote_files:
            remote_card = _read_card_data(Path(api.hf_hub_download(repo_id, README, repo_type="dataset", token=token)))
    remote_card = remote_card if remote_card is not None else huggingface_hub.DatasetCardData()
    _check_kind(remote_card, kind, f"hub repo {repo_id}")
    remote = set(_config_names(remote_card)) | {
        c for c in local if any(f.startswith(config_dir(c) + "/") for f in remote_files)
    }
    replaced = tuple(c for c in local if c in remote)
    if replaced and not overwrite:
        raise VqaShapError(
            f"hub repo {repo_id} already has config(s) {', '.join(replaced)}; "
            "pass overwrite=True (--overwrite) to replace them"
        )
    kept = tuple(sorted(set(_config_names(remote_card)) - set(local)))

    # the uploaded card = the Hub's card (its other configs kept) + the local configs
    meta = _meta(card_data)
    infos = {c: _parquet_info(folder, c) for c in local}
    card_vars = {c: dict((meta.get("configs") or {}).get(c) or {}) for c in local}
    for key in CARD_DATA_KEYS:
        if card_data.get(key) is not None:
            remote_card[key] = card_data[key]
    _add_configs(remote_card, kind, infos, card_vars)
    readme = render_card(remote_card, repo_id=repo_id)

    staging = Path(tempfile.mkdtemp(prefix=".push-", dir=folder))
    try:
        for name in local:
            for src in _shard_files(folder, name):
                _link_or_copy(src, staging / config_dir(name) / src.name)
        (staging / README).write_text(readme, encoding="utf-8")
        with _hub_errors(repo_id, token):
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(staging),
                repo_type="dataset",
                commit_message=commit_message or f"vqa-shap: upload {', '.join(local)}",
                delete_patterns=[f"{config_dir(c)}/*" for c in replaced] or None,
                token=token,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    url = getattr(repo_url, "url", None) or str(repo_url)
    commit_url = getattr(commit, "commit_url", None)
    return PushResult(repo_id, url, tuple(local), replaced, kept, commit_url if isinstance(commit_url, str) else None)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # same file system (the staging dir is inside the folder): no copy
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def _hub_errors(repo_id: str, token: str):
    """Turn Hub failures into one clear :class:`VqaShapError` that never contains the token."""
    from huggingface_hub import errors

    # the HTTP library's base error (httpx's HTTPError covers connection failures too)
    http_error = getattr(errors, "HTTPError", OSError)

    def first_line(exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return text.replace(token, "***") if token else text

    try:
        yield
    except VqaShapError:
        raise
    except errors.OfflineModeIsEnabled as exc:
        raise VqaShapError(
            "cannot push: Hugging Face Hub offline mode is on (HF_HUB_OFFLINE=1); unset it and retry"
        ) from exc
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            reason = f"the Hub refused access to {repo_id} (HTTP {status}): check that your token can write to it"
        else:
            reason = f"the Hub returned an error for {repo_id}: {first_line(exc)}"
        raise VqaShapError(reason) from None
    except (http_error, OSError) as exc:
        raise VqaShapError(f"cannot reach the Hugging Face Hub: {type(exc).__name__}: {first_line(exc)}") from None
