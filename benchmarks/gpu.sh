#!/usr/bin/env bash
# The GPU check, one script, under 8 minutes on one GPU: sequential vs vectorised clients (100 and 1000 clients
# per round) and CPU vs GPU, written to gpu.json / gpu.md with the GPU's name (benchmarks/bench_gpu.py).
#
# On a machine with fedbench's environment:   uv run bash benchmarks/gpu.sh
# On a GPU image that has torch and lightning but not fedbench's other dependencies, first download their wheels
# here (matching that image's Python; git-ignored folder), carry the folder, and run there:
#   bash benchmarks/gpu.sh --download-wheels 3.12      # here: hydra-core, omegaconf, antlr4 4.9.3, submitit, opacus
#   bash benchmarks/gpu.sh [OUT_DIR]                   # there: installs them with --no-index into /tmp
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.device-wheels

if [ "${1:-}" = "--download-wheels" ]; then
  py=${2:-3.12}   # the GPU image's Python (its torch, lightning, scikit-learn, scipy, PyYAML are used as they are)
  locked() { awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' uv.lock; }
  pip download --only-binary=:all: --no-deps --dest "$WHEELS" --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    "hydra-core==$(locked hydra-core)" "omegaconf==$(locked omegaconf)" "submitit==$(locked submitit)" \
    "opacus==$(locked opacus)"
  pip wheel --no-deps --wheel-dir "$WHEELS" "antlr4-python3-runtime==4.9.3"   # sdist only: a pure-Python wheel
  exit 0
fi

OUT=${1:-${OUT:-reports/bench}}
if ! python -c "import hydra, omegaconf, submitit" 2>/dev/null; then
  [ -d "$WHEELS" ] || { echo "fedbench's dependencies are missing and $WHEELS/ is absent (see the header)"; exit 2; }
  pip install --quiet --no-index --no-deps --target /tmp/fedbench-deps "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/fedbench-deps${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: CPU contenders only"
timeout 470 python benchmarks/bench_gpu.py --out "$OUT"
