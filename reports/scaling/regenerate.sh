#!/usr/bin/env bash
# Regenerate the strong/weak scaling report in this folder (about 3 minutes; 3 repeats (seeds) per point, medians; run on an idle machine):
#   bash reports/scaling/regenerate.sh                 # workers 1, 2 (this 2-core machine)
#   bash reports/scaling/regenerate.sh 1,2,4,8         # a bigger node
set -euo pipefail
cd "$(dirname "$0")/../.."
workers=${1:-1,2}
uv run python -m fedbench -m +study=strong_scaling backend.workers=$workers seed=0,1,2 hydra.sweep.dir=outputs/studies/strong_scaling
uv run python -m fedbench -m +study=weak_scaling backend.workers=$workers seed=0,1,2 hydra.sweep.dir=outputs/studies/weak_scaling
uv run python -m fedbench.report outputs/studies/strong_scaling outputs/studies/weak_scaling --out reports/scaling \
  --title "fedbench: strong and weak scaling of backend=ddp (digits)"
