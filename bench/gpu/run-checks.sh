#!/bin/bash
# On a lent GPU machine, after the chunks of bench/gpu/prepare-wheels.sh are in /tmp/acc:
# install cuDF beside the image's Python, run the tests marked gpu (and the cohort toolkit
# under cudf.pandas), then bench/bench_cohort.py on 1 M patients with cuDF against DuckDB.
# Results land in $OUT. Generating the 1 M extract takes about 2 minutes there.
set -o pipefail
mkdir -p /tmp/w
wheel=/tmp/w/$(cat /tmp/acc/libcudf.name)
cat /tmp/acc/libcudf.part* > "$wheel"
echo "$(cat /tmp/acc/libcudf.sha256)  $wheel" | sha256sum -c || exit 3
cp /tmp/acc/*.whl .gpu/c7/*.whl /tmp/w/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site /tmp/w/*.whl 2>&1 | tail -3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/env.txt"
python3 -c "
import importlib
for m in ('cudf', 'pandas', 'pyarrow', 'numpy', 'duckdb', 'narwhals', 'cupy'):
    print(m, importlib.import_module(m).__version__)
" 2>&1 | tee -a "$OUT/env.txt"
tests="tests/hdh/test_gpu.py tests/hdh/test_cohort.py tests/hdh/test_cohort_synth.py tests/hdh/test_read.py"
timeout 120 python3 -m pytest -p no:cacheprovider -q -o addopts=-ra $tests -k "cudf or gpu" 2>&1 \
  | tee "$OUT/pytest.log" | tail -25
timeout 90 python3 -c "
import sys, cudf.pandas
cudf.pandas.install()
import pytest
sys.exit(pytest.main(['-p', 'no:cacheprovider', '-q', '-o', 'addopts=-ra', '-k', 'pandas',
                      'tests/hdh/test_cohort.py', 'tests/hdh/test_cohort_synth.py']))
" 2>&1 | tee "$OUT/pytest-cudf-pandas.log" | tail -8
timeout 300 python3 bench/bench_cohort.py --patients 1000000 --engines cudf duckdb --resident \
  --repeat 2 --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" | grep -v "^  File\|^    " | tail -20
