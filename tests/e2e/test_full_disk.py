"""A full disk: the run that cannot be written fails with one line, nothing half-written stays,
and the results say it failed, as the console did."""

import csv
import json
import os
import subprocess

import pytest
from conftest import stdout_of


@pytest.fixture
def small_disk(project):
    """The project's output folder on a 300 KiB tmpfs (needs root to mount)."""
    out = project.root / "out"
    out.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(out)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    yield out
    subprocess.run(["umount", "-l", str(out)], check=False)


@pytest.mark.parametrize("warm", ["warm", "in-process"])
def test_a_full_disk_fails_the_run_in_one_line(project, small_disk, warm, monkeypatch):
    if warm == "in-process":
        monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    project.notebook("big", ["print('x' * n)"], "n = 10")
    project.write_config(
        {
            "output_dir": "out",
            "runs": [
                {"notebook": "notebooks/big.ipynb", "label": "small", "parameters": {"n": 10}},
                {"notebook": "notebooks/big.ipynb", "label": "huge", "parameters": {"n": 2_000_000}},
            ],
        }
    )
    proc = project.snakemake("--cores", "1", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr
    failed = [line for line in proc.stderr.splitlines() if "big/huge FAILED" in line]
    assert failed and "No space left on device" in failed[0]
    assert "x" * 10 in stdout_of(small_disk / "big" / "small" / "big_small.ipynb")
    leftovers = [p for p in small_disk.rglob("*") if ".partial." in p.name or ".tmp" in p.name]
    assert leftovers == []
    assert not (small_disk / "big" / "huge" / "big_huge.ipynb").exists()


def test_a_run_failed_by_a_full_disk_is_failed_in_the_results(project, small_disk):
    """Its notebook could not be kept, so nothing records the failure but the main process: the
    summary and index.html still say it failed, as the console did."""
    project.notebook("big", ["from IPython.display import display\ndisplay({'text/html': 'x' * n}, raw=True)"], "n = 10")
    project.write_config(
        {
            "output_dir": "out",
            "defaults": {"render": False},
            "runs": [
                {"notebook": "notebooks/big.ipynb", "label": "small", "parameters": {"n": 10}},
                {"notebook": "notebooks/big.ipynb", "label": "huge", "parameters": {"n": 2_000_000}},  # not in its log: room is left
            ],
        }
    )
    proc = project.snakemake("--cores", "1", check=False)
    assert "big/huge FAILED" in proc.stderr and "nbsweep: 2 runs (1 ok, 1 failed)" in proc.stderr, proc.stderr
    assert not (small_disk / "big" / "huge" / "big_huge.failed.ipynb").exists()  # nothing on disk records the failure
    with open(small_disk / "summary.csv", newline="") as fh:
        assert {r["label"]: r["status"] for r in csv.DictReader(fh)} == {"small": "ok", "huge": "failed"}
    huge = next(r for r in json.loads((small_disk / "summary.json").read_text()) if r["label"] == "huge")
    assert huge["status"] == "failed" and huge["error_message"]
    assert 'data-status="failed" data-run="big/huge"' in (small_disk / "index.html").read_text()
