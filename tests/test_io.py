"""The one atomic-write helper: complete content or the old state, never a partial file."""

import json
import os
import stat

import pytest

from vqa_shap.atomic_files import atomic_write_json, atomic_write_npz, atomic_write_text


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"
    atomic_write_json(target, {"x": [1, 2]}, indent=1)
    assert json.loads(target.read_text()) == {"x": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left behind


def test_failure_keeps_old_content_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new" * 1000)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_unencodable_text_fails_cleanly_or_is_escaped(tmp_path):
    target = tmp_path / "b.txt"
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "caf\udce9", encoding="utf-8")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    atomic_write_text(target, "caf\udce9", errors="backslashreplace")
    assert target.read_text() == "caf\\udce9"


def test_mkdir_and_mode_follow_umask(tmp_path):
    target = tmp_path / "new" / "deep" / "c.txt"
    atomic_write_text(target, "x", mkdir=True)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_npz_is_written_the_same_way(tmp_path, monkeypatch):
    # caches and stored runs (the memo, a question's runs) are numpy archives another process may read
    import numpy as np

    target = tmp_path / "deep" / "memo.npz"
    atomic_write_npz(target, mkdir=True, keys=np.arange(3), note="x")
    data = np.load(target)
    assert data["keys"].tolist() == [0, 1, 2] and str(data["note"]) == "x"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        atomic_write_npz(target, keys=np.arange(5))
    assert np.load(target)["keys"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in target.parent.iterdir()) == ["memo.npz"]

