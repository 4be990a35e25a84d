"""Pushing a Hub-style folder to a dataset repository on the Hugging Face Hub (``vqa-shap push``).

Importable from :mod:`vqa_shap.hub.folder` too (``hub.push``, ``hub.PushResult``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vqa_shap.errors import InternalError, VqaShapError
from vqa_shap.hub.card import README, card_meta as _meta, config_dir, config_names as _config_names, render_card
from vqa_shap.hub.card import read_card_data as _read_card_data
from vqa_shap.hub.card import CARD_DATA_KEYS, add_configs as _add_configs, check_kind as _check_kind
from vqa_shap.hub.card import parquet_info as _parquet_info, shard_files as _shard_files


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
    card_data, local, kind = _local_configs(folder)

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
    readme = _merged_readme(folder, card_data, remote_card, local, kind, repo_id)
    commit = _upload(api, folder, repo_id, token, local, replaced, readme,
                     commit_message or f"vqa-shap: upload {', '.join(local)}")
    url = getattr(repo_url, "url", None) or str(repo_url)
    commit_url = getattr(commit, "commit_url", None)
    return PushResult(repo_id, url, tuple(local), replaced, kept, commit_url if isinstance(commit_url, str) else None)


def _local_configs(folder: Path):
    """The folder's card data, its configs (each with shards on disk) and its kind."""
    card_data = _read_card_data(folder / README)
    local = _config_names(card_data)
    if not local:
        raise VqaShapError(f"{folder}: no configs to push (no {README} listing configs)")
    missing = [c for c in local if not _shard_files(folder, c)]
    if missing:
        raise VqaShapError(f"{folder}: config(s) {missing} are listed in {README} but have no parquet shards")
    return card_data, local, _meta(card_data).get("kind") or "questions"


def _merged_readme(folder: Path, card_data, remote_card, local, kind: str, repo_id: str) -> str:
    """The uploaded card = the Hub's card (its other configs kept) + the local configs."""
    meta = _meta(card_data)
    infos = {c: _parquet_info(folder, c) for c in local}
    card_vars = {c: dict((meta.get("configs") or {}).get(c) or {}) for c in local}
    for key in CARD_DATA_KEYS:
        if card_data.get(key) is not None:
            remote_card[key] = card_data[key]
    _add_configs(remote_card, kind, infos, card_vars)
    return render_card(remote_card, repo_id=repo_id)


def _upload(api, folder: Path, repo_id: str, token: str, local, replaced, readme: str, message: str):
    """One ``upload_folder`` commit of the local configs' shards and ``readme`` (replaced configs' old files deleted)."""
    staging = Path(tempfile.mkdtemp(prefix=".push-", dir=folder))
    try:
        for name in local:
            for src in _shard_files(folder, name):
                _link_or_copy(src, staging / config_dir(name) / src.name)
        (staging / README).write_text(readme, encoding="utf-8")
        with _hub_errors(repo_id, token):
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=str(staging),
                repo_type="dataset",
                commit_message=message,
                delete_patterns=[f"{config_dir(c)}/*" for c in replaced] or None,
                token=token,
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
        raise InternalError(f"cannot reach the Hugging Face Hub: {type(exc).__name__}: {first_line(exc)}") from None

