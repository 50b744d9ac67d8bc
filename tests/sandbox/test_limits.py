"""Unit tests of the limit mechanism choice (no sandbox started)."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from jupyterlab_hdh.sandbox import limits


def test_no_limits_no_preexec() -> None:
    applied = limits.prepare_limits("p--u", None, None)
    assert applied.describe() == "memory: none, cpu: none"
    assert applied.preexec() is None


def test_falls_back_to_rlimit_without_writable_cgroups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(limits, "CGROUP_ROOT", tmp_path / "no-cgroupfs")
    applied = limits.prepare_limits("p--u", 2**30, 1.5)
    assert (applied.memory, applied.cpu) == ("rlimit-as", "none")
    assert applied.rlimit_as == 2**30 and applied.cgroup_dirs == []
    fn = applied.preexec()
    assert fn is not None
    # the preexec sets RLIMIT_AS in a child; check it in a forked child
    import os

    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        ok = False
        try:
            fn()
            ok = resource.getrlimit(resource.RLIMIT_AS) == (2**30, 2**30)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
