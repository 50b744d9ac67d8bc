"""Benchmark of the synthetic SNDS generator against a DuckDB peer.

For each population size, runs ``generate`` in a fresh child process and
reports wall time, rows written (all tables), rows/s and the child's peak RSS;
then, in another child, DuckDB writes the same total number of rows of random
data to Parquet (``COPY (SELECT ... FROM range(N)) TO 'x.parquet'``, 10 columns)
and the ratio ours/peer rows/s is printed. Usage:

    python bench/bench_synth.py --patients 100000 1000000 --out /tmp/hdh-bench
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER_SQL = """
COPY (
  SELECT i AS id,
         (random() * 1e9)::BIGINT AS a,
         random() AS b,
         DATE '2019-01-01' + (random() * 1800)::INTEGER AS d,
         md5(i::VARCHAR)[1:17] AS s,
         (random() * 30)::INTEGER AS q,
         random() < 0.5 AS f,
         (random() * 100)::DECIMAL(10, 2)::DOUBLE AS m,
         chr(65 + (random() * 25)::INTEGER)
           || lpad(((random() * 999)::INTEGER)::VARCHAR, 3, '0') AS c,
         NULL::VARCHAR AS n
  FROM range({rows}) t(i)
) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
"""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_generate(out: Path, patients: int, seed: int, chunk_size: int) -> dict:
    from jupyterlab_hdh.data.synth import generate

    start = time.perf_counter()
    manifest = generate(out, patients, seed, chunk_size=chunk_size, progress=False)
    seconds = time.perf_counter() - start
    rows = sum(t["rows"] for t in manifest["tables"].values())
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def child_peer(out: Path, rows: int) -> dict:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(PEER_SQL.format(rows=rows, path=out / "peer.parquet"))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def run_child(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--out", type=Path, default=None, help="scratch folder (default: a tmp dir)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, out = args.child[0], Path(args.child[1])
        if kind == "generate":
            result = child_generate(out, int(args.child[2]), int(args.child[3]), int(args.child[4]))
        else:
            result = child_peer(out, int(args.child[2]))
        print(json.dumps(result))
        return

    base = args.out or Path(tempfile.mkdtemp(prefix="hdh-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'patients':>10} {'rows':>12} {'seconds':>8} {'rows/s':>11} {'peak RSS MB':>11} | "
        f"{'peer s':>7} {'peer rows/s':>11} {'peer RSS MB':>11} | {'ours/peer':>9}"
    )
    print("hdh data synth benchmark (our rows: all tables, up to 123 columns; peer: 10 columns)")
    print(header)
    for patients in args.patients:
        out = base / f"synth-{patients}"
        if out.exists():
            shutil.rmtree(out)
        ours = run_child("generate", str(out), str(patients), str(args.seed), str(args.chunk_size))
        peer_out = base / f"peer-{patients}"
        peer = run_child("peer", str(peer_out), str(ours["rows"]))
        ours_rate = ours["rows"] / ours["seconds"]
        peer_rate = peer["rows"] / peer["seconds"]
        print(
            f"{patients:>10} {ours['rows']:>12} {ours['seconds']:>8.1f} {ours_rate:>11,.0f} "
            f"{ours['peak_rss_mb']:>11,.0f} | {peer['seconds']:>7.1f} {peer_rate:>11,.0f} "
            f"{peer['peak_rss_mb']:>11,.0f} | {ours_rate / peer_rate:>9.2f}",
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(peer_out, ignore_errors=True)


if __name__ == "__main__":
    main()
