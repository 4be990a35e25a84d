"""Atomic file writes: a file is either its complete new content or its old state, never half-written.

Every file the toolkit writes that a later run reads back (work files, settings, cards, caches,
reports) goes through :func:`atomic_write_text`: the text is written to a temporary file in the
same folder (same file system, so the rename is atomic), flushed and fsynced, then moved over the
target with ``os.replace``. A crash or ``kill -9`` at any point leaves no partial target; a failed
write removes its temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_npz", "atomic_write_json", "safe_stem", "file_digest", "naming_path"]

# mkstemp creates files readable by the owner only; give the target the mode open() would give it.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def naming_path(path: str | os.PathLike):
    """Give an ``OSError`` raised inside the block that names no file (a full disk while writing, a quota)
    the path being written, so the message can say where (``cannot write PATH: no space left``)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), os.fspath(path)) from exc


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      errors: str = "strict", mkdir: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``).

    Args:
        path: the target file.
        text: its new content.
        encoding: text encoding.
        errors: encoding error handler (as for :func:`open`).
        mkdir: create the parent folder first.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return _atomic_write(path, lambda fd: os.fdopen(fd, "w", encoding=encoding, errors=errors),
                         lambda handle: handle.write(text), mkdir)


def atomic_write_npz(path: str | os.PathLike, *, mkdir: bool = False, **arrays: Any) -> Path:
    """``numpy.savez(path, **arrays)`` atomically, as :func:`atomic_write_text` writes text (caches and
    stored runs that a later run, or another process, reads back)."""
    import numpy as np

    return _atomic_write(path, lambda fd: os.fdopen(fd, "wb"), lambda handle: np.savez(handle, **arrays), mkdir)


def _atomic_write(path: str | os.PathLike, open_fd, write, mkdir: bool) -> Path:
    """Open a temporary file beside ``path`` with ``open_fd(fd)``, ``write(handle)`` into it, fsync it
    and move it over ``path``; on any failure the temporary file is removed and ``path`` untouched."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name: readers that list a folder (e.g. work files) never see a temporary file as data;
    # a unique one: two processes writing the same target never share it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(AttributeError, OSError):  # no fchmod on Windows
            os.fchmod(fd, 0o666 & ~_UMASK)
        with naming_path(path), open_fd(fd) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, data: Any, *, mkdir: bool = False, **dumps_kwargs: Any) -> Path:
    """``atomic_write_text(path, json.dumps(data, **dumps_kwargs))``."""
    return atomic_write_text(path, json.dumps(data, **dumps_kwargs), mkdir=mkdir)


def safe_stem(key: str, *, max_chars: int = 80) -> str:
    """A file name stem for ``key`` (e.g. a qid) that stays inside its folder and never collides.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``; leading dots are dropped, so ``..``,
    ``../../x`` and ``/abs`` can neither leave the folder nor become hidden files; a short digest of
    ``key`` keeps ``a/b`` and ``a_b`` apart.
    """
    import hashlib
    import re

    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:max_chars].lstrip(".") or "_"
    digest = hashlib.sha1(key.encode("utf-8", errors="surrogatepass")).hexdigest()[:10]
    return f"{readable}-{digest}"


def swap_in_folder(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Replace the folder ``target`` by ``staging`` with renames only: a reader sees the old folder or
    the new one, never half of either; the old copy is deleted last."""
    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, or of a folder's sorted file names and bytes (frame folders)."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode() if path.is_dir() else b"")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
