"""Benchmark 3: pseudonymisation throughput against OpenSSL's HMAC ceiling.

Owns the measurement behind ``docs/benchmarks.md`` for keyed pseudonymisation:

* ceiling: ``openssl speed -hmac sha256 -bytes 16`` run in the same job (one process);
* ours: :func:`hmac_sha256_many` over distinct 15-byte NIR-like identifiers, one core,
  compiled path and pure-Python fallback;
* peer: a naive ``hmac.new(k, m, "sha256").digest()`` Python loop on a subset;
* end to end: :func:`pseudonymise` (dedup, double HMAC, hex, take back) over a column of
  ``--rows`` rows holding ``--distinct`` distinct identifiers, then a Parquet write.

Prints rates and ratios (ours/openssl, ours/naive) and asserts nothing. Timings are the
minimum of ``--repeats`` warm runs; CPU time is shown next to wall time because
``openssl speed`` divides by user CPU time.

Usage: ``python bench/bench_pseudonymise.py [--distinct 2000000] [--rows 10000000]``
"""

from __future__ import annotations

import argparse
import hmac
import os
import platform
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jupyterlab_hdh.data import _hmac_batch
from jupyterlab_hdh.data.pseudonymise import KeyPair, _hex_strings, hmac_sha256_many, pseudonymise

NIR_LENGTH = 15


def openssl_hmac_rate(seconds: int) -> tuple[float, str]:
    """HMAC-SHA256 operations per second on 16-byte inputs, from ``openssl speed -mr``."""
    version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    out = subprocess.run(
        ["openssl", "speed", "-mr", "-hmac", "sha256", "-bytes", "16", "-seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    text = out.stdout + out.stderr
    # machine-readable line: +R:<count>:hmac(sha256):<seconds>
    match = re.search(r"^\+R:(\d+):[^:]*hmac[^:]*:([0-9.]+)\s*$", text, re.MULTILINE)
    if not match:
        raise RuntimeError(f"cannot parse openssl speed output:\n{text}")
    return int(match.group(1)) / float(match.group(2)), version


def nir_like_ids(n: int, rng: np.random.Generator) -> pa.Array:
    """``n`` distinct 15-digit NIR-like identifiers (13 digits + 2-digit mod-97 key)."""
    bodies = np.unique(rng.integers(0, 10**12, size=int(n * 1.05) + 1000, dtype=np.int64))
    bodies = rng.permutation(bodies)[:n]
    sex = rng.integers(1, 3, size=n, dtype=np.int64)
    nir13 = sex * 10**12 + bodies
    full = nir13 * 100 + (97 - nir13 % 97)
    digits = np.empty((n, NIR_LENGTH), dtype=np.uint8)
    x = full.copy()
    for pos in range(NIR_LENGTH - 1, -1, -1):
        digits[:, pos] = x % 10 + ord("0")
        x //= 10
    offsets = np.arange(0, NIR_LENGTH * (n + 1), NIR_LENGTH, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(digits)]
    )


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Minimum wall and CPU seconds over ``repeats`` runs (after one warm-up call)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def naive_loop(key: bytes, messages: list[bytes]) -> list[bytes]:
    return [hmac.new(key, m, "sha256").digest() for m in messages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=2_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--naive-subset", type=int, default=300_000)
    parser.add_argument("--seconds", type=int, default=3, help="openssl speed duration")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    pa.set_cpu_count(1)  # one core: the target is per core
    rng = np.random.default_rng(20240501)
    keys = KeyPair(secrets.token_bytes(32), secrets.token_bytes(32))

    print("# Pseudonymisation benchmark (HMAC-SHA256, FOIN-like double hash)")
    cpu = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu)
        cpu = model.group(1).strip() if model else cpu
        sha_ni = " sha_ni" in lscpu
    except OSError:
        sha_ni = False
    print(f"cpu: {cpu} (logical cpus: {os.cpu_count()}, sha_ni: {sha_ni})")
    print(f"python {platform.python_version()}, pyarrow {pa.__version__}, numpy {np.__version__}")

    backend = _hmac_batch.resolve_backend()
    if backend != "c":
        print(f"WARNING: compiled backend unavailable: {_hmac_batch.compile_error()}")

    openssl_rate, openssl_version = openssl_hmac_rate(args.seconds)
    print(f"{openssl_version}")
    print(
        f"openssl speed -hmac sha256 -bytes 16 -seconds {args.seconds}: "
        f"{openssl_rate / 1e6:.2f} M HMAC/s (1 core, CPU time)"
    )

    ids = nir_like_ids(args.distinct, rng)
    print(f"\ndistinct ids: {len(ids):,} x {NIR_LENGTH} bytes (NIR-like)")

    wall, cpu_s = best_of(args.repeats, lambda: hmac_sha256_many(keys.k1, ids, backend=backend))
    ours = len(ids) / wall
    ours_cpu = len(ids) / cpu_s if cpu_s else float("nan")
    print(
        f"hmac_sha256_many [{backend}]: {ours / 1e6:.2f} M/s wall, "
        f"{ours_cpu / 1e6:.2f} M/s CPU ({wall:.3f} s for {len(ids):,})"
    )

    subset = ids.slice(0, min(args.naive_subset, len(ids)))
    subset_bytes = [v.encode() for v in subset.to_pylist()]
    nwall, _ = best_of(args.repeats, lambda: naive_loop(keys.k1, subset_bytes))
    naive = len(subset_bytes) / nwall
    print(f"naive hmac.new loop: {naive / 1e6:.2f} M/s ({len(subset_bytes):,} ids)")
    pwall, _ = best_of(args.repeats, lambda: hmac_sha256_many(keys.k1, subset, backend="python"))
    fallback = len(subset) / pwall
    print(f"hmac_sha256_many [python fallback, midstate copy]: {fallback / 1e6:.2f} M/s")

    ref = [hmac.digest(keys.k1, m, "sha256") for m in subset_bytes[:100_000]]
    same = hmac_sha256_many(keys.k1, subset.slice(0, len(ref))).to_pylist() == ref
    print(f"byte-identical to hmac.digest on {len(ref):,} ids: {same}")

    print(
        f"\nratio ours/openssl: {ours / openssl_rate:.2f} (wall), "
        f"{ours_cpu / openssl_rate:.2f} (CPU)  [target >= 0.50]"
    )
    print(f"ratio ours/naive:   {ours / naive:.1f}x")
    print(f"ratio fallback/naive: {fallback / naive:.1f}x")

    # End to end: rows with repeats, every distinct id present at least once.
    n_rows = max(args.rows, len(ids))
    idx = np.concatenate(
        [np.arange(len(ids)), rng.integers(0, len(ids), n_rows - len(ids))]
    ).astype(np.int32)
    rng.shuffle(idx)
    column = pc.take(ids, pa.array(idx))
    n_distinct = pc.count_distinct(column).as_py()
    print(f"\nend to end: {n_rows:,} rows, {n_distinct:,} distinct ids")

    result: dict[str, pa.Array] = {}

    def run_e2e() -> None:
        result["out"] = pseudonymise(column, keys, backend=backend)

    ewall, ecpu = best_of(args.repeats, run_e2e)
    print(
        f"pseudonymise: {ewall:.2f} s wall ({ecpu:.2f} s CPU) = "
        f"{n_rows / ewall / 1e6:.2f} M rows/s, {n_distinct / ewall / 1e6:.2f} M distinct/s"
    )
    # Breakdown of one run, step by step (same steps as pseudonymise).
    t0 = time.perf_counter()
    encoded = pc.dictionary_encode(column)
    t1 = time.perf_counter()
    digests = hmac_sha256_many(keys.k2, hmac_sha256_many(keys.k1, encoded.dictionary))
    t2 = time.perf_counter()
    hexed = _hex_strings(digests)
    t3 = time.perf_counter()
    pc.take(hexed, encoded.indices)
    t4 = time.perf_counter()
    print(
        f"  breakdown: dedup (dictionary_encode) {t1 - t0:.2f} s, double HMAC {t2 - t1:.2f} s, "
        f"hex {t3 - t2:.2f} s, take back {t4 - t3:.2f} s"
    )
    rows_naive = 2 * n_rows / naive
    print(f"  naive per-row double hmac.new (extrapolated): {rows_naive:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pseudonymised.parquet"
        table = pa.table({"pseudonym": result["out"]})
        t0 = time.perf_counter()
        pq.write_table(table, path)
        pwrite = time.perf_counter() - t0
        size = path.stat().st_size
    print(
        f"parquet write of the pseudonym column: {pwrite:.2f} s ({size / 1e6:.0f} MB); "
        f"end to end incl. write: {n_rows / (ewall + pwrite) / 1e6:.2f} M rows/s"
    )


if __name__ == "__main__":
    main()
