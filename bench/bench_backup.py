"""Benchmark of ``hdh backup`` and ``hdh restore`` against a plain ``tar`` of the data directory.

For each installation — the demo that ``hdh up`` makes (10,000 synthetic patients, seed
2026, its users and project) and one per ``--patients`` size (``hdh init``, then the
patients generated and ingested with the CLI as datasets of at most ``--per-dataset``,
100,000 by default: an ingestion holds a whole table in memory, and one of 1,000,000
patients was killed for memory at 22.6 GB) — it measures, each command a child process:

* ``hdh backup --out B`` of the SQLite installation: seconds, size of the backup folder
  (sum of its files' sizes), the child's peak RSS;
* ``hdh restore B`` into a new data directory on (i) SQLite and (ii) PostgreSQL (a
  server started here from the Debian binaries, ``/usr/lib/postgresql/*/bin``, default
  settings, on a Unix socket; skipped with a note when they are missing);

and, in the same run, the peer: the simplest copy of the same data directory, GNU
``tar -cf`` of it (no compression) and ``tar -xf`` of that archive into a new folder
(the peer cannot move an installation to PostgreSQL: both restores are compared with the
same ``tar -xf``). It prints one table with the ratios ours/peer for time and size.

The raw extracts are generated outside the data directories (``hdh up`` keeps the demo's
under ``incoming/``, which a backup leaves out), so both sides copy the same data. The
process pins itself and its children to ``--cpus`` cores (2 by default, the development
machine's). ``--cold`` drops what each step reads from the page cache first (those files
only); ``--keep`` then ``--reuse`` measures the same installations again without building
them. Each command's output, timestamped, is kept in ``<work>/<installation>/commands.log``
(``--keep``). It is never part of the test suite. Usage (docs/benchmarks.md)::

    python bench/bench_backup.py                           # demo + 10,000 patients
    python bench/bench_backup.py --patients 10000 1000000 --work /var/tmp/hdh-bench --keep
    python bench/bench_backup.py --patients 10000 1000000 --work /var/tmp/hdh-bench --reuse --cold
"""

from __future__ import annotations

import argparse
import os
import platform
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "bench passphrase: correct horse battery staple"  # noqa: S105 - a scratch one
DEMO_PATIENTS, DEMO_SEED = 10_000, 2026  # jupyterlab_hdh.cli.hub's defaults for `hdh up`
DEMO_DATASET, DEMO_TITLE = "demo-snds", "Démonstration : extrait SNDS synthétique"
PG_PORT = "54339"  # names the socket file only (no TCP): never collides with the tests'
HDH = [shutil.which("hdh", path=Path(sys.executable).parent) or "hdh"]  # the venv's `hdh`
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")  # Debian package `time`


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float | None
    size_mb: float | None = None


def log(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def size_mb(path: Path) -> float:
    """The sum of the sizes of the regular files under ``path`` (or of ``path``), in MB."""
    if path.is_file():
        return path.stat().st_size / 1e6
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            p = Path(top) / name
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total / 1e6


def evict(path: Path) -> None:
    """Drop the files under ``path`` from the page cache (clean pages: after a sync), so
    that the next step reads them from the disk; nothing else on the machine is touched."""
    for top, _dirs, files in os.walk(path) if path.is_dir() else [(path.parent, [], [path.name])]:
        for name in files:
            p = Path(top) / name
            if p.is_file() and not p.is_symlink():
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def timed(cmd: list[str], logfile: Path, *, cold: Sequence[Path] = ()) -> Run | None:
    """Run ``cmd`` as a child: its wall time and peak RSS (GNU time's %M: a child of this
    process would inherit this process's high-water mark), or None if it failed. Its output
    goes to ``logfile``, each line with the seconds since the start (the step's phases).
    The files under ``cold`` are first dropped from the page cache."""
    os.sync()  # what earlier steps wrote is not flushed on this step's time
    for path in cold:
        evict(path)
    rss = logfile.with_suffix(".rss")
    wrapped = [GNU_TIME, "-f", "%M", "-o", str(rss), *cmd] if GNU_TIME else cmd
    with logfile.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(f"{time.perf_counter() - start:8.2f}  {line}")
        status = proc.wait()
        seconds = time.perf_counter() - start
        out.write(f"{seconds:8.2f}  (exit {status})\n")
    if status != 0:
        log(f"FAILED (exit {status}): {' '.join(cmd)}; see {logfile}")
        return None
    peak = int(rss.read_text().split()[-1]) / 1024 if GNU_TIME else None  # KiB
    return Run(seconds, peak)


# --- the installations -------------------------------------------------------------------


def build(root: Path, scratch: Path, patients: int, seed: int, per_dataset: int, *,
          demo: bool) -> None:  # fmt: skip
    """An installation in ``root`` (SQLite) holding ``patients`` ingested synthetic patients,
    in datasets of at most ``per_dataset`` (one extract each, own seed: ingestion holds a
    whole table in memory); with ``demo``, ``hdh up``'s dataset, users and project."""
    logfile = scratch.parent / "build.log"
    if timed([*HDH, "--data-dir", str(root), "init"], logfile) is None:
        raise SystemExit(f"hdh init failed: see {logfile}")
    parts = [per_dataset] * (patients // per_dataset) + [patients % per_dataset] * bool(
        patients % per_dataset
    )
    if demo:
        parts = [patients]  # one dataset, as `hdh up` makes it
    for i, n in enumerate(parts):
        name = DEMO_DATASET if demo else "synth-snds" + (f"-{i + 1:02}" if len(parts) > 1 else "")
        title = DEMO_TITLE if demo else f"Synthetic SNDS extract {i + 1} ({n:,} patients)"
        extract = scratch / name
        synth = timed([*HDH, "data", "synth", "--patients", str(n), "--seed", str(seed + i),
                       "--out", str(extract), "--raw", "--quiet"], logfile)  # fmt: skip
        ingest = timed([*HDH, "--data-dir", str(root), "data", "ingest", str(extract),
                        "--dataset", name, "--title", title], logfile)  # fmt: skip
        if synth is None or ingest is None:
            raise SystemExit(f"building {root} failed: see {logfile}")
        log(f"{name}: {n:,} patients generated in {synth.seconds:.0f} s, ingested in"
            f" {ingest.seconds:.0f} s (peak RSS {ingest.peak_rss_mb or 0:,.0f} MB)")  # fmt: skip
        shutil.rmtree(extract)  # outside the data directory: neither side copies it
    if demo:
        from jupyterlab_hdh.cli import demo as up
        from jupyterlab_hdh.context import open_installation
        from jupyterlab_hdh.paths import DataDir

        hub = open_installation(DataDir.resolve(root))
        try:
            up._demo_credentials(hub)
            up._demo_project(hub)
        finally:
            hub.close()


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return found[0].parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres() -> Iterator[str | None]:
    """A PostgreSQL server for this run (a URL template with ``{db}``), or None."""
    bindir = _pg_bindir()
    if bindir is None:
        print("PostgreSQL: no server binaries in /usr/lib/postgresql/*/bin: SQLite only")
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="hdh-bench-pg-"))
    data, sock = base / "data", base / "sock"
    for p in (data, sock):
        p.mkdir()
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for p in (base, data, sock):
            os.chown(p, pg.pw_uid, pg.pw_gid)
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
    opts = f"-c listen_addresses='' -k {sock} -p {PG_PORT}"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log")]
    subprocess.run(_as_postgres([*ctl, "-o", opts, "-w", "start"]), check=True,
                   capture_output=True)  # fmt: skip
    print(f"PostgreSQL: {bindir.parent.name}, default settings, Unix socket in {sock}")
    try:
        yield f"postgresql+psycopg://postgres@/{{db}}?host={sock}&port={PG_PORT}"
    finally:
        subprocess.run(_as_postgres([*ctl, "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def new_database(server: str) -> str:
    import sqlalchemy as sa

    name = "hdh_bench_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(server.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.format(db=name)


# --- one installation, measured ----------------------------------------------------------


def _row(step: str, run: Run | None, peer: Run | None) -> list[str]:
    if run is None:
        return ["", step, "FAILED", "", "", "", "", "", ""]
    rss = f"{run.peak_rss_mb:,.0f}" if run.peak_rss_mb is not None else "?"
    size = f"{run.size_mb:,.1f}" if run.size_mb is not None else ""
    if peer is None or peer.size_mb is None or run.size_mb is None:
        return ["", step, f"{run.seconds:.2f}", size, rss, "", "", "", ""]
    return [
        "", step, f"{run.seconds:.2f}", size, rss, f"{peer.seconds:.2f}", f"{peer.size_mb:,.1f}",
        f"{run.seconds / peer.seconds:.1f}", f"{run.size_mb / peer.size_mb:.2f}",
    ]  # fmt: skip


def measure(case: str, work: Path, pg: str | None, *, cold: bool) -> list[list[str]]:
    """Back up ``work/hdh``, restore it, and do the same with tar; the table's rows. With
    ``cold``, what each step reads is dropped from the page cache first."""
    source, logfile, secret = work / "hdh", work / "commands.log", work / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    rows = [_row("hdh start-up (hdh --version)", timed([*HDH, "--version"], logfile), None)]
    rows[0][0] = f"{case}, data dir {size_mb(source):,.0f} MB"

    ours, archive, untarred = work / "backup", work / "peer.tar", work / "peer-restore"
    backup = timed([*HDH, "--data-dir", str(source), "backup", "--out", str(ours),
                    "--passphrase-file", str(secret)], logfile, cold=[source] * cold)  # fmt: skip
    peer_backup = timed(["tar", "-cf", str(archive), "-C", str(work), source.name], logfile,
                        cold=[source] * cold)  # fmt: skip
    untarred.mkdir()
    peer_restore = timed(["tar", "-xf", str(archive), "-C", str(untarred)], logfile,
                         cold=[archive] * cold)  # fmt: skip
    for run, path in ((backup, ours), (peer_backup, archive), (peer_restore, untarred)):
        if run is not None:
            run.size_mb = size_mb(path)
    rows.append(_row("backup", backup, peer_backup))
    log(f"{case}: backup {f'{backup.seconds:.1f} s' if backup else 'FAILED'}")
    if backup is None:
        return rows

    targets = [("sqlite", None)] + ([("postgresql", new_database(pg))] if pg else [])
    for backend, url in targets:
        target = work / f"restore-{backend}"
        store = ["--store-url", url] if url else []
        run = timed([*HDH, "--data-dir", str(target), *store, "restore", str(ours),
                     "--passphrase-file", str(secret)], logfile, cold=[ours] * cold)  # fmt: skip
        if run is not None:
            run.size_mb = size_mb(target)
            shutil.rmtree(target)
        rows.append(_row(f"restore into {backend}", run, peer_restore))
        log(f"{case}: restore into {backend} {f'{run.seconds:.1f} s' if run else 'FAILED'}")

    verify = [*HDH, "audit", "verify", "--checkpoint", str(ours / "audit" / "checkpoint.json"),
              "--log", str(ours / "store" / "audit_events.jsonl"),
              "--public-key", str(ours / "audit" / "public-key.pem")]  # fmt: skip
    rows.append(_row("offline audit verify of the backup", timed(verify, logfile), None))
    evict(work)  # a --cold run's next installation starts from the disk too
    return rows


COLUMNS = ["installation", "step", "seconds", "size MB", "peak RSS MB",
           "tar s", "tar MB", "time ours/tar", "size ours/tar"]  # fmt: skip


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    lines = []
    for row in [COLUMNS, *rows]:
        cells = zip(row, widths, strict=True)
        text = "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells))
        lines.append(text.rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="*", default=[10_000],
                        help="sizes of the synthetic installations (default: 10000)")  # fmt: skip
    parser.add_argument("--no-demo", action="store_true", help="skip the demo installation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--per-dataset",
        type=int,
        default=100_000,
        help="most patients in one ingested dataset (default: 100000; one ingestion of"
        " 1,000,000 was killed for memory at 22.6 GB RSS on a 24 GB machine)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="restore into SQLite only")
    parser.add_argument("--cpus", type=int, default=2, help="cores to run on (default: 2)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder (default: a new one under $TMPDIR)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the installations a --keep run left in --work")  # fmt: skip
    parser.add_argument("--cold", action="store_true",
                        help="drop what each step reads from the page cache first")  # fmt: skip
    parser.add_argument(
        "--without-demo-credentials",
        action="store_true",
        help="move the demo's demo-credentials.json out of its data directory before measuring"
        " (hdh backup failed on it on 2026-12-05: it writes secrets/ without making the folder)",
    )
    args = parser.parse_args(argv)

    cpus = sorted(os.sched_getaffinity(0))[: args.cpus]
    os.sched_setaffinity(0, cpus)  # inherited by every child: hdh, tar, the PostgreSQL server
    base = args.work or Path(tempfile.mkdtemp(prefix="hdh-bench-backup-"))
    base.mkdir(parents=True, exist_ok=True)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                  if line.startswith("model name")), platform.machine())  # fmt: skip
    tar_version = subprocess.run(["tar", "--version"], capture_output=True, text=True)
    print("hdh backup/restore benchmark; peer: `tar -cf` of the data directory (no"
          " compression), then `tar -xf` of that archive into a new folder")  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"  # fmt: skip
    changed = subprocess.run([*git, "status", "--porcelain", "--", "jupyterlab_hdh"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    commit += " + uncommitted changes to jupyterlab_hdh" if changed else ""
    print(f"hdh at {commit}; page cache: {'dropped before each step' if args.cold else 'warm'}")
    print(f"cpus: {len(cpus)} of {os.cpu_count()} ({model}), python"
          f" {platform.python_version()}, {tar_version.stdout.splitlines()[0]}")  # fmt: skip

    cases = ([] if args.no_demo else [("demo", DEMO_PATIENTS, DEMO_SEED, True)]) + [
        (f"synthetic-{n}", n, args.seed, False) for n in args.patients
    ]
    rows: list[list[str]] = []
    keep = args.keep or args.reuse
    try:
        with postgres() if not args.no_postgres else _none() as pg:
            for case, patients, seed, demo in cases:
                work = base / case
                if args.reuse and (work / "built").is_file():
                    log(f"{case}: reusing {work / 'hdh'} ({(work / 'built').read_text().strip()})")
                    for old in ("backup", "peer.tar", "peer-restore", "commands.log"):
                        if (work / old).is_dir():
                            shutil.rmtree(work / old)
                        else:
                            (work / old).unlink(missing_ok=True)
                else:
                    if work.exists():
                        shutil.rmtree(work)
                    (work / "extracts").mkdir(parents=True)
                    build(work / "hdh", work / "extracts", patients, seed, args.per_dataset,
                          demo=demo)  # fmt: skip
                    if demo and args.without_demo_credentials:
                        (work / "hdh" / "demo-credentials.json").rename(work / "credentials.json")
                    (work / "built").write_text(f"built by {commit}\n")
                rows += measure(f"{case} ({patients:,} patients)", work, pg, cold=args.cold)
                if keep:
                    log(f"{case}: every command's output, timed: {work / 'commands.log'}")
                else:
                    shutil.rmtree(work)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    print(table(rows))


@contextmanager
def _none() -> Iterator[None]:
    print("PostgreSQL: not measured (--no-postgres)")
    yield None


if __name__ == "__main__":
    main()
