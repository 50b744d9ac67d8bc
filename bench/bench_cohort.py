"""Benchmark of ``mi-pathway`` (cohort extraction plus its aggregation) against peers.

On a synthetic extract of ``hdh data synth`` (generated once into ``--data``, laid out as a
sandbox's ``/data``), times in one run:

* ``hdh/<engine>``: :func:`hdh.studies.mi_pathway.read_tables` then ``headline`` through
  the cohort toolkit, from Parquet, for each engine asked for; the variant of
  :data:`hdh.studies.STUDY_ENGINE` (``duckdb``) is hdh's default, always timed and marked
  ``(default)`` (``"default"`` in ``--json``);
* ``duckdb-sql``: the same numbers written by hand in DuckDB SQL (``bench/mi_pathway.sql``)
  over the Parquet files: the peer the default is held against (target ≤ 1.1×);
* ``pandas-tuned``: the same numbers written by hand in tuned pandas
  (``bench/mi_pathway_pandas.py``: projected PyArrow reads, filters in the read, integer
  days and keys, the DCIR lines cut to the cohort's patients, windows and drug classes
  before the netting of regularisations): target, hdh's default ≥ 5× faster than it;
  ``pandas-tuned/full-clean`` is the same code cleaning the whole DCIR first, as the SQL
  and the toolkit do (the engines' gap without the study-specific shortcut);
* ``hdh/spark`` with ``--spark`` (or ``spark`` among ``--engines``): the toolkit on
  :func:`hdh.spark`'s local session (``local[*]``), run last with the SQL connections
  closed; its heap is a third of ``--spark-memory`` (given to ``hdh.spark()`` as a
  sandbox's ``HDH_MEMORY_LIMIT``; 12 GiB, so a 4 GiB heap that spills to the temporary
  folder rather than let the JVM grow past it: meant to keep 1 M under 24 GB), timed
  ``--spark-repeat`` times (1 by default) after its warm-up. Off by default, it is slow:
  one run took 15 to 27 s at 50 000 patients and 44 s at 200 000 (warm, on 2 shared
  cores), so about 3 min a run at 1 M by that slope, 6 to 8 min with the warm-up;
* ``hdh/duckdb/whole-dcir``: the default with ``whole_dcir=True``: the toolkit cleaning
  every DCIR line first, as the SQL does, where the study cleans only its cohort's lines:
  the same algorithm as the SQL's, so the toolkit's own overhead;
* ``floor``: a bare scan of the referenced columns (PyArrow, all threads) and nothing else;
* with ``--resident``: the data already in memory, for ``duckdb-sql`` (DuckDB tables) and
  each engine that keeps it (``cudf`` on the GPU, ``polars``, ``pandas``, ``arrow``):
  the aggregation alone, the target for a GPU being cuDF ≥ 5× DuckDB on the same machine.

Each variant runs once to warm up, then ``--repeat`` times; the best time is kept. Every
variant's headline is checked against DuckDB SQL's before it is timed. Printed at the end:
each variant's ratio to ``duckdb-sql`` (and its resident variant), and the speed-up of
hdh's default over ``pandas-tuned``. Usage::

    python bench/bench_cohort.py --patients 1000000 --engines duckdb pandas polars
    python bench/bench_cohort.py --patients 50000 --spark
    python bench/bench_cohort.py --patients 1000000 --engines duckdb cudf --resident
"""

from __future__ import annotations

import argparse
import gc
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

from bench import mi_pathway_pandas  # noqa: E402
from bench.study_sql import connect as sql_connection  # noqa: E402
from bench.study_sql import headline as sql_headline  # noqa: E402

COUNTS = ("beta_blocker", "antiplatelet", "statin", "acei_arb", "any", "all_four")
GiB = 2**30


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


def hdh_counts(tables: dict[str, Any], whole_dcir: bool = False) -> dict[str, int]:
    from hdh.studies import mi_pathway

    h = mi_pathway.headline(tables, whole_dcir=whole_dcir)
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


def start_spark(memory_gib: float) -> Any:
    """:func:`hdh.spark`'s local session, its heap sized by ``hdh._spark`` from a memory
    limit of ``memory_gib`` (a third of it), as in a sandbox with that limit."""
    import hdh

    os.environ["HDH_MEMORY_LIMIT"] = str(int(memory_gib * GiB))
    return hdh.spark()


def main() -> int:
    from hdh.studies import STUDY_ENGINE

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "hdh-bench-cohort")
    ap.add_argument(
        "--engines",
        nargs="+",
        default=[STUDY_ENGINE, "pandas", "polars", "arrow"],
        help=f"hdh's engines to time ({STUDY_ENGINE!r}, the default, always; 'spark' = --spark)",
    )
    ap.add_argument("--spark", action="store_true", help="also time hdh/spark (slow, see above)")
    ap.add_argument(
        "--spark-memory",
        type=float,
        default=12.0,
        help="GiB: the memory limit hdh.spark() sizes its heap from (a third of it; default 12)",
    )
    ap.add_argument("--spark-repeat", type=int, default=1, help="timed runs of hdh/spark")
    ap.add_argument("--resident", action="store_true", help="also time on in-memory data")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()
    engines = list(dict.fromkeys([STUDY_ENGINE, *args.engines]))
    spark = args.spark or "spark" in engines
    engines = [e for e in engines if e != "spark"]
    default = f"hdh/{STUDY_ENGINE}"

    root = args.data / str(args.patients)
    folder = ensure_extract(root, args.patients, args.seed)
    os.environ["HDH_DATA_ROOT"] = str(root)
    os.environ.setdefault("HDH_BRIDGE_SOCKET", str(root / "no-bridge.sock"))

    results: dict[str, dict[str, Any]] = {}

    def label(name: str) -> str:
        return f"{name} (default)" if name == default else name

    def run(
        name: str, fn: Callable[[], Any], expected: dict[str, int] | None, repeat: int = 0
    ) -> None:
        try:
            seconds, answer = best_of(fn, repeat or args.repeat)
        except Exception as exc:  # one variant failing must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{label(name):<26} FAILED: {type(exc).__name__}: {exc}", flush=True)
            return
        ok = expected is None or answer == expected
        results[name] = {"seconds": seconds, "matches_sql": ok}
        if name == default:
            results[name]["default"] = True
        shown = "" if ok else "DIFFERS: " + str(answer)
        print(f"{label(name):<26} {seconds:8.3f} s  {shown}", flush=True)

    con = sql_connection(folder, resident=False)
    expected = sql_headline(con)
    print("headline (duckdb-sql):", json.dumps(expected), flush=True)
    run("duckdb-sql", lambda: sql_headline(con), expected)
    run("floor", lambda: floor(folder), None)
    run("pandas-tuned", lambda: mi_pathway_pandas.headline(folder), expected)
    run(
        "pandas-tuned/full-clean",
        lambda: mi_pathway_pandas.headline(folder, early=False),
        expected,
    )

    from hdh.studies import mi_pathway

    for engine in engines:
        run(
            f"hdh/{engine}",
            lambda e=engine: hdh_counts(mi_pathway.read_tables(DATASET, engine=e)),
            expected,
        )
    default = f"hdh/{STUDY_ENGINE}"
    run(
        f"{default}/whole-dcir",
        lambda: hdh_counts(mi_pathway.read_tables(DATASET, engine=STUDY_ENGINE), True),
        expected,
    )

    if args.resident:
        mem = sql_connection(folder, resident=True)
        run("duckdb-sql resident", lambda: sql_headline(mem), expected)
        for engine in engines:
            if engine == "duckdb":
                continue  # a DuckDB relation over Parquet is not resident data
            try:
                tables = resident_tables(engine)
            except Exception as exc:
                results[f"hdh/{engine} resident"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"hdh/{engine} resident FAILED to load: {exc}", flush=True)
                continue
            run(f"hdh/{engine} resident", lambda t=tables: hdh_counts(t), expected)
            del tables
        mem.close()

    if spark:  # last, the SQL's memory given back: its JVM's heap next to little else
        con.close()
        gc.collect()
        start = time.perf_counter()
        try:
            session = start_spark(args.spark_memory)
        except Exception as exc:
            results["hdh/spark"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"hdh/spark FAILED to start: {type(exc).__name__}: {exc}", flush=True)
        else:
            heap = session.conf.get("spark.driver.memory", "?")
            master = session.conf.get("spark.master", "?")
            print(
                f"spark: {master}, heap {heap}, started in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
            run(
                "hdh/spark",
                lambda: hdh_counts(mi_pathway.read_tables(DATASET, engine="spark")),
                expected,
                repeat=args.spark_repeat,
            )
            if "seconds" in results["hdh/spark"]:
                results["hdh/spark"] |= {"heap": heap, "master": master}

    runs = f"best of {args.repeat}" + (f", hdh/spark of {args.spark_repeat}" if spark else "")
    print(f"\nratios (time / peer), {args.patients:,} patients, {runs}:")
    for name, r in results.items():
        if "seconds" not in r:
            continue
        peer = "duckdb-sql resident" if name.endswith("resident") else "duckdb-sql"
        if peer in results and "seconds" in results[peer]:
            ratio = r["seconds"] / results[peer]["seconds"]
            target = "  (target <= 1.1x)" if name == default else ""
            print(f"  {label(name):<26} {ratio:6.2f}x {peer}{target}")
    speedups = {}
    if "seconds" in results.get(default, {}):
        print(f"speed-up of hdh's default ({default}):")
        for peer in ("pandas-tuned", "pandas-tuned/full-clean"):
            if "seconds" in results.get(peer, {}):
                speedups[peer] = results[peer]["seconds"] / results[default]["seconds"]
                target = "  (target >= 5x)" if peer == "pandas-tuned" else ""
                print(f"  over {peer:<23} {speedups[peer]:6.2f}x{target}")
    if args.json:
        report = {
            "patients": args.patients,
            "default": default,
            "speedup_of_default": speedups,
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(r.get("matches_sql", True) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
