#!/bin/bash
# Fetch cuDF's wheels for a lent GPU machine (Python 3.12, CUDA 13) and cut them into
# folders of at most 58 MiB under .gpu/c1 … .gpu/c7 (git-ignored: add "/.gpu/" to
# .git/info/exclude), one folder per device call, since a call carries 64 MiB at most.
# The device image already has CuPy, numba-cuda, pandas 3, pyarrow and the CUDA 13 runtime;
# its NumPy 2.5 lacks np.row_stack, which numba-cuda 0.30 needs, so NumPy 2.4 travels too.
# Usage, from the repository root: bash bench/gpu/prepare-wheels.sh; then, on the device,
# one call per folder `mkdir -p /tmp/acc && cp .gpu/cN/* /tmp/acc/` (carry .gpu/cN), and
# last `bash .gpu/c7/run-checks.sh` (carry .gpu/c7). See docs/benchmarks.md.
set -euo pipefail
root=$(pwd)
dl=$(mktemp -d)
pip_get() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 -d "$dl" "$@"
}
pip_get cudf-cu13==26.10.2 libcudf-cu13==26.10.2 pylibcudf-cu13==26.10.2 rmm-cu13==26.10.0 \
  librmm-cu13==26.10.0 libkvikio-cu13==26.10.0 nvidia-libnvcomp-cu13==5.3.0.16 \
  rapids-logger==0.3.0 nvtx==0.2.17 cachetools==8.0.2 duckdb==2.0.1 numpy==2.4.6 \
  "narwhals==$(python3 -c 'import narwhals; print(narwhals.__version__)' 2>/dev/null || echo 2.29.0)"
rm -rf "$root/.gpu" && mkdir -p "$root"/.gpu/c{1,2,3,4,5,6,7}
big=$(ls "$dl"/libcudf_cu13-*.whl)
split -b 58M -d -a 1 "$big" "$dl/libcudf.part"
for i in 0 1 2 3 4; do mv "$dl/libcudf.part$i" "$root/.gpu/c$((i + 1))/"; done
sha256sum "$big" | cut -c1-64 > "$root/.gpu/c5/libcudf.sha256"
basename "$big" > "$root/.gpu/c5/libcudf.name"
rm "$big"
for name in nvidia_libnvcomp_cu13 pylibcudf_cu13 librmm_cu13 libkvikio_cu13 nvtx rmm_cu13 \
  rapids_logger cachetools cudf_cu13; do
  mv "$dl/$name"-*.whl "$root/.gpu/c6/"
done
mv "$dl"/*.whl "$root/.gpu/c7/"  # duckdb, numpy, narwhals
cp "$root/bench/gpu/run-checks.sh" "$root/.gpu/c7/"
du -sh "$root"/.gpu/*
