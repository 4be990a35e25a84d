"""Which files of an output folder vqa-shap may delete or overwrite: only those it wrote.

A folder that vqa-shap rebuilds as a whole (a ``view`` site, a ``report`` folder, a study's generated
source) carries a manifest, :data:`MANIFEST`, listing the files the last build wrote. A rebuild is
written aside and swapped in (:func:`replace_folder`); files the user added since (notes, figures) are
carried over into the new folder, and a rebuild that would overwrite one of them is refused. A
non-empty folder without a manifest was not made by vqa-shap and is refused before any work
(:func:`check_output_folder`), unless its caller knows vqa-shap made it before manifests existed
(``legacy_owned``: a view site's old marker, a folder inside a study's output), whose files then all
count as vqa-shap's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from vqa_shap.errors import UsageError
from vqa_shap.atomic_files import atomic_write_json, swap_in_folder

#: The manifest file of a folder vqa-shap builds: JSON ``{"written_by": <command>, "files": [relative paths]}``.
#: No ``.json`` suffix: builders read a source folder's ``*.json`` files, and a study's generated source
#: carries a manifest too.
MANIFEST = ".vqa-shap-manifest"


class ForeignFolderError(UsageError):
    """An output folder holds files vqa-shap did not write, and writing would delete or overwrite them."""


def _files(folder: Path) -> set[str]:
    """Every file under ``folder``, as POSIX paths relative to it (the manifest excluded)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if (p.is_file() or p.is_symlink()) and p.name != MANIFEST}


def written_files(folder: Path | str) -> set[str] | None:
    """The files the manifest of ``folder`` lists, or ``None`` when it has none (or it is unreadable)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(f) for f in data["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_output_folder(folder: Path | str, command: str, *, legacy_owned: bool = False) -> None:
    """Refuse, before any work, a ``folder`` that is a file, or is non-empty and not made by vqa-shap.

    Args:
        folder: the output folder (may not exist yet).
        command: the command writing it, for the message (``view``, ``report``, ...).
        legacy_owned: a folder without a manifest was written by vqa-shap before manifests existed.

    Raises:
        ForeignFolderError: ``folder`` is a file, or holds files and no manifest (and not ``legacy_owned``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ForeignFolderError(f"{folder} is a file; give a folder for vqa-shap {command} to write")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if legacy_owned or (folder / MANIFEST).is_file():
        return
    raise ForeignFolderError(f"{folder} is not empty and was not written by vqa-shap {command}; "
                             "choose another (new or empty) folder")


def foreign_files(folder: Path | str, *, legacy_owned: bool = False) -> set[str]:
    """Files under ``folder`` that vqa-shap did not write (not in its manifest); none when the folder is
    missing, or has no manifest and is ``legacy_owned`` (its files predate manifests)."""
    folder = Path(folder)
    if not folder.is_dir():
        return set()
    written = written_files(folder)
    if written is None:
        return set() if legacy_owned else _files(folder)
    return _files(folder) - written


def staging_for(target: Path | str) -> Path:
    """A new hidden folder beside ``target`` to write its next content into (same file system, so the
    swap is a rename); an error creating it names ``target``, the folder the user asked for."""
    import uuid

    target = Path(target)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(target)) from exc
    return staging


def replace_folder(staging: Path | str, target: Path | str, command: str, *, legacy_owned: bool = False) -> None:
    """Put the freshly written ``staging`` folder in the place of ``target``, keeping the user's files.

    The files of ``target`` that its manifest does not list are carried into ``staging`` (hard links,
    else copies, so ``target`` is intact until the swap); the manifest of ``staging`` is written; then
    the folders are swapped with renames (:func:`vqa_shap.atomic_files.swap_in_folder`).

    Raises:
        ForeignFolderError: a file of the user's has the path of a file the new build wrote (nothing
            is changed; ``staging`` stays for the caller to remove).
    """
    staging, target = Path(staging), Path(target)
    check_output_folder(target, command, legacy_owned=legacy_owned)
    staged = _files(staging)
    keep = foreign_files(target, legacy_owned=legacy_owned)
    clash = sorted(keep & staged)
    if clash:
        raise ForeignFolderError(f"{target / clash[0]} was not written by vqa-shap {command} and the new "
                                 f"{command} output has a file of that name; move it away and run again")
    for rel in sorted(keep):
        source, copy = target / rel, staging / rel
        copy.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, copy, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, copy, follow_symlinks=False)
    atomic_write_json(staging / MANIFEST, {"written_by": command, "files": sorted(staged)}, indent=1)
    swap_in_folder(staging, target)
