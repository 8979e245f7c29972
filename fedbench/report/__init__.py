"""Reports: read run folders (summary.json, metrics.csv, config) and turn them into tables."""
