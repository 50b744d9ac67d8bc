"""Start and stop ``hdh up`` (the README's run command) as a subprocess, for the tests that need it.

One launcher for ``tests/cli/test_up.py`` and ``tests/hub/`` (and the UI test
that reuses the hub module's fixture): it reads ``hdh up``'s stdout until the
hub's URL line and stops it with Ctrl-C (SIGINT), as a user would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from jupyterlab_hdh.hub.config import free_port

__all__ = ["free_port", "start_up", "stop_up"]

READY_LINE = "HDH hub:"


def start_up(
    data_dir: Path,
    port: int,
    api_port: int,
    *,
    seed: int,
    patients: int = 150,
    poll_interval: int | None = None,
    stderr_file: Path | None = None,
    timeout: float = 240,
    store_url: str = "",
    extra_args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[str], list[str]]:
    """Run ``hdh up`` on ``data_dir`` until it prints the hub's URL; (proc, lines).

    The store is SQLite in ``data_dir`` unless ``store_url`` names another (PostgreSQL).

    Its stderr is piped, or written to ``stderr_file`` (for a long-running hub whose
    stderr nobody drains).
    """
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab_hdh.cli",
        "--data-dir",
        str(data_dir),
        "up",
        "--port",
        str(port),
        "--api-port",
        str(api_port),
        "--patients",
        str(patients),
        "--seed",
        str(seed),
    ]
    if poll_interval is not None:
        cmd += ["--poll-interval", str(poll_interval)]
    cmd += extra_args  # e.g. single sign-on (tests/hub/test_oidc_login.py)
    stderr: IO[str] | int = stderr_file.open("w") if stderr_file else subprocess.PIPE
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "HDH_STORE_URL": store_url},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            proc.wait(30)
            err = (
                stderr_file.read_text()
                if stderr_file
                else (proc.stderr.read() if proc.stderr else "")
            )
            pytest.fail(f"hdh up exited before it was ready: {lines[-10:]} {err[-3000:]}")
        lines.append(line.rstrip())
        if line.startswith(READY_LINE):
            return proc, lines
    proc.kill()
    pytest.fail("hdh up did not print its URL in time")


def stop_up(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Ctrl-C, wait for a clean exit; returns what it wrote on stderr (if piped)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("hdh up did not stop on Ctrl-C")
    return err or ""
