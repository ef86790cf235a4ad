"""Print what changed for every stale run of a sweep, and its best run by a metric (stale runs still have their notebook).

Run it in a project folder after `snakemake`: ``python sweep_report.py [METRIC]``.
"""

import sys

from nbsweep import api

metric = sys.argv[1] if len(sys.argv) > 1 else "accuracy"

for state in api.status().states:
    if state.state == "stale":
        for change in state.changes:
            print(f"{state.run}: {change.what} {change.name} {change.old!r} -> {change.new!r} ({change.how})")

rows = [row for row in api.results() if row["status"] in ("ok", "stale") and row.get(f"metrics.{metric}") is not None]
if rows:
    best = max(rows, key=lambda row: row[f"metrics.{metric}"])
    print(f"best {metric}: {best[f'metrics.{metric}']} in {best['template']}/{best['label']} ({best['notebook']})")
