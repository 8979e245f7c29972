#!/usr/bin/env bash
# Regenerate the digits seed-study reports in this folder (about 8 minutes on 2 CPU cores):
#   bash reports/digits/regenerate.sh
# Each study runs over seeds 10, 11, 12 into outputs/studies/<study> at "digits scale" (the course's
# settings with course_lr=0.3, B = 10 and 50 rounds: with ~14 images per client, the course's
# lr 0.01 and B = 100 take one tiny step per round and nothing learns in 10 rounds), then
# `python -m fedbench.report` writes reports/digits/<study>/ (figures + systems_report.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
for study in client_number client_fraction local_epochs iid_vs_noniid noniid_lr_fraction communication; do
  uv run python -m fedbench -m +study=$study seed=10,11,12 course_lr=0.3 batch_size=10 rounds=50 hydra.sweep.dir=outputs/studies/$study
  uv run python -m fedbench.report outputs/studies/$study --out reports/digits/$study --title "fedbench: $study study (digits)"
done
