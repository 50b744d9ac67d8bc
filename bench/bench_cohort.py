"""Benchmark of ``mi-pathway`` (cohort extraction plus its aggregation) against peers.

On a synthetic extract of ``hdh data synth`` (generated once into ``--data``, laid out as a
sandbox's ``/data``), times in one run:

* ``hdh/<engine>``: :func:`hdh.studies.mi_pathway.read_tables` then ``headline`` through
  the cohort toolkit, from Parquet, for each engine asked for (``pandas`` is hdh's default);
* ``duckdb-sql``: the same numbers written by hand in DuckDB SQL (``bench/mi_pathway.sql``)
  over the Parquet files: the peer the default engine is held against;
* ``floor``: a bare scan of the referenced columns (PyArrow, all threads) and nothing else;
* with ``--resident``: the data already in memory, for ``duckdb-sql`` (DuckDB tables) and
  each engine that keeps it (``cudf`` on the GPU, ``polars``, ``pandas``, ``arrow``):
  the aggregation alone, the target for a GPU being cuDF ≥ 5× DuckDB on the same machine.

Each variant runs once to warm up, then ``--repeat`` times; the best time is kept. Every
variant's headline is checked against DuckDB SQL's before it is timed; ratios are printed
against ``duckdb-sql`` (and its resident variant). Usage::

    python bench/bench_cohort.py --patients 1000000 --engines pandas duckdb polars
    python bench/bench_cohort.py --patients 1000000 --engines duckdb cudf --resident
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DATASET, VERSION = "bench", "v1"

from bench.study_sql import connect as sql_connection  # noqa: E402
from bench.study_sql import headline as sql_headline  # noqa: E402

COUNTS = ("beta_blocker", "antiplatelet", "statin", "acei_arb", "any", "all_four")


def ensure_extract(root: Path, patients: int, seed: int) -> Path:
    """The extract under ``root/bench/v1`` (generated unless already there)."""
    folder = root / DATASET / VERSION
    if not (folder / "extract.json").exists():
        from jupyterlab_hdh.data.synth import generate

        print(f"generating {patients:,} patients into {folder} ...", flush=True)
        start = time.perf_counter()
        generate(folder, patients, seed, progress=False)
        print(f"  generated in {time.perf_counter() - start:.1f} s", flush=True)
    return folder


def hdh_counts(tables: dict[str, Any]) -> dict[str, int]:
    from hdh.studies import mi_pathway

    h = mi_pathway.headline(tables)
    return {"n": h["n"], **h["counts"]}


def floor(folder: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    from hdh.studies.mi_pathway import COLUMNS

    rows = 0
    for table, columns in COLUMNS.items():
        pattern = table.replace("aa", "??")
        for path in sorted(folder.glob(f"{pattern}.parquet")):
            have = set(pq.read_schema(path).names)
            rows += pq.read_table(path, columns=[c for c in columns if c in have]).num_rows
    return {"rows": rows}


def resident_tables(engine: str) -> dict[str, Any]:
    """The study's tables read once into ``engine``'s memory (eager frames)."""
    from hdh.studies import mi_pathway

    tables = mi_pathway.read_tables(DATASET, engine=engine)
    if engine == "polars":
        return {k: v.collect() if hasattr(v, "collect") else v for k, v in tables.items()}
    return tables


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up, and the answer checked
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "hdh-bench-cohort")
    ap.add_argument("--engines", nargs="+", default=["pandas", "duckdb", "polars", "arrow"])
    ap.add_argument("--resident", action="store_true", help="also time on in-memory data")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()

    root = args.data / str(args.patients)
    folder = ensure_extract(root, args.patients, args.seed)
    os.environ["HDH_DATA_ROOT"] = str(root)
    os.environ.setdefault("HDH_BRIDGE_SOCKET", str(root / "no-bridge.sock"))

    results: dict[str, dict[str, Any]] = {}

    def run(name: str, fn: Callable[[], Any], expected: dict[str, int] | None) -> None:
        try:
            seconds, answer = best_of(fn, args.repeat)
        except Exception as exc:  # one variant failing must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name:<22} FAILED: {type(exc).__name__}: {exc}", flush=True)
            return
        ok = expected is None or answer == expected
        results[name] = {"seconds": seconds, "matches_sql": ok}
        print(f"{name:<22} {seconds:8.3f} s  {'' if ok else 'DIFFERS: ' + str(answer)}", flush=True)

    con = sql_connection(folder, resident=False)
    expected = sql_headline(con)
    print("headline (duckdb-sql):", json.dumps(expected), flush=True)
    run("duckdb-sql", lambda: sql_headline(con), expected)
    run("floor", lambda: floor(folder), None)

    from hdh.studies import mi_pathway

    for engine in args.engines:
        run(
            f"hdh/{engine}",
            lambda e=engine: hdh_counts(mi_pathway.read_tables(DATASET, engine=e)),
            expected,
        )

    if args.resident:
        mem = sql_connection(folder, resident=True)
        run("duckdb-sql resident", lambda: sql_headline(mem), expected)
        for engine in args.engines:
            if engine == "duckdb":
                continue  # a DuckDB relation over Parquet is not resident data
            try:
                tables = resident_tables(engine)
            except Exception as exc:
                results[f"hdh/{engine} resident"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"hdh/{engine} resident FAILED to load: {exc}", flush=True)
                continue
            run(f"hdh/{engine} resident", lambda t=tables: hdh_counts(t), expected)

    print(f"\nratios (time / peer), {args.patients:,} patients, best of {args.repeat}:")
    for name, r in results.items():
        if "seconds" not in r:
            continue
        peer = "duckdb-sql resident" if name.endswith("resident") else "duckdb-sql"
        if peer in results and "seconds" in results[peer]:
            ratio = r["seconds"] / results[peer]["seconds"]
            print(f"  {name:<22} {ratio:6.2f}x {peer}")
    if args.json:
        args.json.write_text(json.dumps({"patients": args.patients, "results": results}, indent=2))
    return 0 if all(r.get("matches_sql", True) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
