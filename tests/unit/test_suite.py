"""The suite's own machinery, which the e2e modules' time and correctness rest on."""

import subprocess
import sys


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    """Modules sharing one expensive fixture (a SLURM cluster's sweeps, an S3 server) are marked
    ``xdist_group``; under ``--dist loadgroup`` (pyproject's addopts) their tests must run on one
    worker, or the fixture is built on both, at twice the cost and racing itself. pytest 9.2 with
    pytest-xdist 3.8 silently stopped grouping (pytest-xdist#1386)."""
    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.xdist_group('one')\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_worker(i):\n"
        "    with open('workers.txt', 'a') as f:\n"
        "        f.write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider", "test_grouped.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers = (tmp_path / "workers.txt").read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, f"one group ran on workers {sorted(set(workers))}: install the test extra's pytest"
