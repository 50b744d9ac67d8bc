"""Shared fixtures: a real PostgreSQL server started for the session, store URLs for both backends.

The PostgreSQL fixture runs the Debian server binaries (``initdb``/``pg_ctl``
from ``/usr/lib/postgresql/*/bin``) on a Unix socket in a temporary folder, as
the ``postgres`` user when the tests run as root. Tests that take the
``store_url`` fixture run once on SQLite and once on PostgreSQL. Set
``HDH_TEST_POSTGRES=off`` only on a machine without the Debian package; the
README's test command installs it and never sets that.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running PostgreSQL server; yields a base URL without a database name."""
    if os.environ.get("HDH_TEST_POSTGRES") == "off":
        pytest.skip("HDH_TEST_POSTGRES=off: PostgreSQL tests disabled on this machine")
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin):"
            " run the README's test command, which installs the Debian package"
        )
    base = Path(tempfile.mkdtemp(prefix="hdh-pg-"))
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for p in (base, data, sock):
            os.chown(p, pg.pw_uid, pg.pw_gid)
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    port = "54329"
    opts = f"-c listen_addresses='' -k {sock} -p {port} -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(base / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@/{{db}}?host={sock}&port={port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def _create_pg_database(server_url: str) -> str:
    import sqlalchemy as sa

    name = "hdh_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(server_url.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.format(db=name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    return _create_pg_database(server)


@pytest.fixture(scope="session")
def raw_extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small raw (direct identifiers) synthetic extract, generated once per session."""
    from jupyterlab_hdh.data.synth import generate

    out = tmp_path_factory.mktemp("extract") / "raw"
    generate(out, patients=300, seed=7, raw=True, progress=False)
    return out


@pytest.fixture
def extract_copy(raw_extract: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the raw extract (tests may damage it)."""
    dest = tmp_path / "extract"
    shutil.copytree(raw_extract, dest)
    return dest


@pytest.fixture
def hub(store_url: str, tmp_path: Path):
    """An initialised installation on each store backend."""
    from jupyterlab_hdh.context import init_installation
    from jupyterlab_hdh.paths import DataDir

    opened, _ = init_installation(DataDir.resolve(tmp_path / "hdh", store_url), actor="test")
    yield opened
    opened.close()
