"""A run folder that cannot be written (``chattr +i``): that run fails in one line, the others finish."""

import csv
import json
import subprocess

import pytest
from conftest import executions


def immutable(path, on: bool) -> bool:
    """Set or clear the immutable attribute of ``path``; whether it worked."""
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def freeze(tmp_path):
    """Make folders immutable for the test (skipped where chattr does not work here), and writable again after it."""
    probe = tmp_path / "chattr-probe"
    probe.mkdir()
    works = immutable(probe, True)
    if works:
        try:
            (probe / "file").touch()
            works = False  # root ignores mode bits, not the immutable attribute; this filesystem ignores it
        except PermissionError:
            pass
    immutable(probe, False)
    if not works:
        pytest.skip("chattr +i does not work here (needs root and a filesystem with the immutable attribute, e.g. ext4)")
    frozen = []

    def freeze_folder(folder):
        assert immutable(folder, True)
        frozen.append(folder)

    yield freeze_folder
    for folder in frozen:
        immutable(folder, False)


def results(project) -> tuple[dict, dict, str]:
    """(run id -> summary.csv row, run id -> summary.json row, index.html)."""
    with open(project.out / "summary.csv", newline="") as fh:
        from_csv = {f"{r['template']}/{r['label']}": r for r in csv.DictReader(fh)}
    from_json = {f"{r['template']}/{r['label']}": r for r in json.loads((project.out / "summary.json").read_text())}
    return from_csv, from_json, (project.out / "index.html").read_text()


def test_a_run_folder_that_cannot_be_written_fails_that_run_in_one_line(project, freeze):
    project.notebook("t", ["print(x)"], "x = 1")
    project.notebook("after_two", ["print(len(upstream))"], "upstream = []")
    runs = [
        {"notebook": "notebooks/t.ipynb", "label": "l{x}", "grid": {"x": [1, 2, 3]}},
        {"notebook": "notebooks/after_two.ipynb", "label": "all", "after": ["t/l2"]},
    ]
    project.write_config({"runs": runs})
    project.snakemake()
    folder = project.out / "t" / "l2"
    freeze(folder)

    proc = project.snakemake()  # every run current: a folder that cannot be written changes nothing
    assert "FAILED" not in proc.stderr
    assert {r["status"] for r in results(project)[0].values()} == {"ok"}
    before = executions(project)
    proc = project.snakemake("--forcerun", "nbsweep_run", check=False)  # forced: refused in one sentence, before anything executes
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "run t/l2 cannot execute: its folder papermill_outputs/t/l2 cannot be written" in proc.stderr
    assert executions(project) == before

    project.notebook("t", ["print(x, 'changed')"], "x = 1")  # every run of t and the run after t/l2 are stale
    before = executions(project)
    proc = project.snakemake(check=False)
    assert proc.returncode == 1, proc.stderr  # a run failed, as with any failing run under keep-going
    assert "Traceback" not in proc.stderr and "PermissionError" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "t/l2" in line]
    assert len(lines) == 1 and "FAILED" in lines[0] and "papermill_outputs/t/l2" in lines[0] and "chattr -i" in lines[0], proc.stderr
    after = executions(project)
    assert {run for run in after if after[run] != before[run]} == {"t/l1", "t/l3"}
    from_csv, from_json, page = results(project)
    assert from_csv["t/l2"]["status"] == from_json["t/l2"]["status"] == "failed"
    assert "cannot be written" in from_csv["t/l2"]["error_message"] and "cannot be written" in from_json["t/l2"]["error_message"]
    assert from_csv["after_two/all"]["status"] == "not run" and from_csv["t/l1"]["status"] == "ok"
    assert 'data-status="failed" data-run="t/l2"' in page and 'data-status="not run" data-run="after_two/all"' in page

    immutable(folder, False)
    project.snakemake()
    after_fix = executions(project)
    assert {run for run in after_fix if after_fix[run] != after[run]} == {"t/l2", "after_two/all"}
    assert {r["status"] for r in results(project)[0].values()} == {"ok"}
