"""Parallel kernels: concurrency honours --cores and threads; many kernels start without races."""

import json
from datetime import datetime

import pytest
from conftest import stdout_of


def max_overlap(notebooks) -> int:
    """Most runs executing at the same moment, from papermill's recorded start/end times."""
    events = []
    for path in notebooks:
        meta = json.loads(path.read_text())["metadata"]["papermill"]
        events += [(datetime.fromisoformat(meta["start_time"]), 1), (datetime.fromisoformat(meta["end_time"]), -1)]
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def sleepy(project, n, seconds, threads=1):
    project.notebook("nap", ["import time\ntime.sleep(seconds)"], "seconds = 0\ni = 0")
    project.write_config(
        {
            "defaults": {"threads": threads},
            "runs": [
                {"notebook": "notebooks/nap.ipynb", "label": "n{i}", "grid": {"i": list(range(n))}, "parameters": {"seconds": seconds}}
            ],
        }
    )
    return [project.target("nap", f"n{i}") for i in range(n)]


# Each run marks that it started, then waits (up to 300 s) until ``together`` runs have: they all
# overlap as soon as they can, however long the kernels take to start on a loaded machine.
TOGETHER = (
    "import os, time\nopen(os.path.join('started', str(i)), 'w').close()\ndeadline = time.monotonic() + 300\n"
    "while len(os.listdir('started')) < together and time.monotonic() < deadline:\n    time.sleep(0.05)"
)


def test_cores_8_runs_8_notebooks_at_once(project):
    project.notebook("nap", [TOGETHER], "together = 1\ni = 0")
    (project.root / "started").mkdir()
    project.write_config(
        {"runs": [{"notebook": "notebooks/nap.ipynb", "label": "n{i}", "grid": {"i": list(range(8))}, "parameters": {"together": 8}}]}
    )
    project.snakemake(cores=8)
    assert max_overlap([project.target("nap", f"n{i}") for i in range(8)]) == 8


def test_threads_count_against_cores(project):
    targets = sleepy(project, 4, 6, threads=2)
    project.snakemake(cores=4)
    assert max_overlap(targets) == 2


KERNELS = 96  # six waves of 16 kernels starting together


@pytest.mark.slow
def test_many_kernels_at_cores_16_start_without_failures(project):
    """Many kernels starting at once race for ZMQ ports over TCP; nbsweep's IPC kernels don't.

    The race is between kernels starting together, so what matters is 16 of them at once, again and
    again: 96 runs (six full waves) keep that; the test once ran 300 (19 waves), for 3x the time."""
    project.notebook("tiny", ["print('ECHO', i * 2)"], "i = 0")
    project.write_config(
        {
            "defaults": {"render": False},
            "runs": [{"notebook": "notebooks/tiny.ipynb", "label": "t{i}", "grid": {"i": list(range(KERNELS))}}],
        }
    )
    proc = project.snakemake(cores=16, timeout=1200)
    assert proc.returncode == 0
    targets = list(project.out.glob("tiny/*/tiny_*.ipynb"))
    assert len(targets) == KERNELS
    for target in targets:
        nb = json.loads(target.read_text())
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
        assert f"ECHO {2 * int(target.parent.name[1:])}" in stdout_of(target)
    logs = "".join(p.read_text() for p in project.out.glob("tiny/*/*.log"))
    for symptom in ("Address already in use", "ZMQError", "Kernel died", "Kernel didn't respond", "timed out"):
        assert symptom not in logs
    assert not list(project.out.glob("tiny/*/*.failed.ipynb"))
