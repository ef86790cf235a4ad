"""A full disk: the run that cannot be written fails with one line, nothing half-written stays."""

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
