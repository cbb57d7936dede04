"""The shared atomic-write helper: the target is replaced whole or not at all, with the usual permissions."""

from __future__ import annotations

import os
import stat

import pytest

from neuromorph._atomic import atomic_path, atomic_write_bytes, current_umask


def test_umask_is_read_without_changing_it():
    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027  # still the same: reading did not reset it
    finally:
        os.umask(before)


def test_success_replaces_the_target_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    before = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"first")
        atomic_write_bytes(target, b"second", fsync=True)
    finally:
        os.umask(before)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(error):
        with atomic_path(target, suffix=".png") as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png"
            tmp.write_bytes(b"half")
            raise error()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
