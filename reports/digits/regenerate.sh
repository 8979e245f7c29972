#!/usr/bin/env bash
# Regenerate the digits seed-study reports in this folder (about 5 minutes on 2 CPU cores):
#   bash reports/digits/regenerate.sh
# Each study runs over seeds 10, 11, 12 into outputs/studies/<study>, then
# `python -m fedbench.report` writes reports/digits/<study>/ (figures + systems_report.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
for study in client_number client_fraction local_epochs iid_vs_noniid noniid_lr_fraction communication; do
  uv run python -m fedbench -m +study=$study seed=10,11,12 hydra.sweep.dir=outputs/studies/$study
  uv run python -m fedbench.report outputs/studies/$study --out reports/digits/$study --title "fedbench: $study study (digits)"
done
