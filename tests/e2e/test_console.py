"""nbsweep's console (the logger plugin in the workflow profile): real snakemake, real kernels."""

import fcntl
import os
import pty
import struct
import subprocess
import termios

from conftest import SNAKEFILE, SNAKEMAKE

from nbsweep.smk import interrupts
from nbsweep.smk.console import Progress, clock

PROFILE_LINE = "Using workflow specific profile"
# What Snakemake itself says when a job failed (kept: short, and it explains the exit status).
SNAKEMAKE_FAILURE = {
    "Exiting because a job execution failed. Look above for error messages",
    "WorkflowError:",
    "At least one job did not complete successfully.",
}


def calc_project(project):
    project.notebook(
        "calc", ["import time\ntime.sleep(0.3)", "if x == 0:\n    raise ZeroDivisionError('x must not be zero')\ny = 1 / x"], "x = 1"
    )
    project.write_config({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": [0, 1, 2]}}]})
    return project


def test_default_console_is_one_line_per_run_a_progress_line_and_the_closing_line(project):
    proc = calc_project(project).snakemake("--logger-nbsweep-progress-every", "0", check=False)
    assert proc.returncode != 0  # one run failed
    lines = proc.stderr.splitlines()
    assert [line for line in lines if line.startswith("nbsweep: run ")] == [
        line
        for line in lines
        if line.startswith(("nbsweep: run calc/x1 ok in", "nbsweep: run calc/x2 ok in", "nbsweep: run calc/x0 FAILED in"))
    ]
    assert sorted(line.split()[2] for line in lines if line.startswith("nbsweep: run ")) == ["calc/x0", "calc/x1", "calc/x2"]
    assert "nbsweep: 3 runs to execute" in lines
    assert any(line.startswith("nbsweep: 2/3 runs done") and "ETA" in line for line in lines), proc.stderr
    # No progress line after the last run's own line: the closing line says how it ended.
    last_run = max(i for i, line in enumerate(lines) if line.startswith("nbsweep: run "))
    assert not [line for line in lines[last_run:] if "runs done" in line], proc.stderr
    assert lines[-1] == "nbsweep: 3 runs (2 ok, 1 failed); summary in papermill_outputs/index.html"
    others = {line for line in lines if not line.startswith("nbsweep: ") and not line.startswith(PROFILE_LINE)}
    assert others <= SNAKEMAKE_FAILURE, proc.stderr
    for noise in (
        "rule nbsweep_run",
        "Finished jobid",
        "CalledProcessError",
        "RuleException",
        "-m nbsweep.execution.job",
        "Error in rule",
        "Job stats",
    ):
        assert noise not in proc.stderr + proc.stdout


def test_verbose_brings_snakemakes_job_blocks_back(project):
    proc = calc_project(project).snakemake("--verbose", check=False)
    assert "localrule nbsweep_run:" in proc.stderr and "Finished jobid" in proc.stderr
    assert "CalledProcessError" in proc.stderr and "Error in rule nbsweep_run" in proc.stderr
    assert "nbsweep: run calc/x1 ok in" in proc.stderr
    assert "nbsweep: 3 runs (2 ok, 1 failed); summary in papermill_outputs/index.html" in proc.stderr


def test_nothing_to_be_done_is_still_said(project):
    project.notebook("echo", ["print(x)"], "x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/echo.ipynb", "label": "a"}]})
    project.snakemake()
    again = project.snakemake()
    assert "Nothing to be done" in again.stderr and "nbsweep: run " not in again.stderr


def test_index_is_rewritten_while_the_sweep_runs(project):
    """The slow run waits until index.html shows the quick run finished: only a refresh during
    the sweep can write it, the final write comes after the slow run."""
    wait = (
        "import pathlib, shutil, time\n"
        "index = pathlib.Path('papermill_outputs/index.html')\n"
        "for _ in range(1200):\n"
        "    if index.exists() and 'quick' in index.read_text():\n"
        "        shutil.copy(index, 'seen-during-sweep.html')\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "else:\n"
        "    raise RuntimeError('index.html was not written during the sweep')"
    )
    project.notebook("slow", [wait])
    project.notebook("quick", ["print('done')"])
    project.write_config(
        {"runs": [{"notebook": "notebooks/slow.ipynb", "label": "wait"}, {"notebook": "notebooks/quick.ipynb", "label": "now"}]}
    )
    proc = project.snakemake("--logger-nbsweep-refresh-every", "0")
    assert "nbsweep: run slow/wait ok" in proc.stderr
    seen = (project.root / "seen-during-sweep.html").read_text()
    assert "quick" in seen and seen != (project.out / "index.html").read_text()  # the final one also has slow/wait done
    assert "nbsweep: 2 runs (2 ok)" in proc.stderr


def test_a_terminal_gets_one_updating_progress_line_pinned_to_its_bottom(project):
    calc_project(project)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "2"]
    proc = subprocess.Popen(
        cmd, cwd=project.root, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env={**project.env, "TERM": "xterm"}
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: snakemake ended
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=300)
    os.close(leader)
    text = output.decode("utf-8", "replace")
    assert "\x1b[1;29r" in text  # rows 1-29 scroll, row 30 holds the progress line
    assert "\x1b[30;1H\x1b[2Knbsweep: 3/3 runs done (2 ok, 1 failed)" in text
    assert text.rstrip().endswith("summary in papermill_outputs/index.html")
    assert text.rfind("\x1b[r") > text.rfind("runs done")  # the scroll region is given back
    assert "nbsweep: 3 runs to execute" not in text  # a terminal gets the pinned line instead of plain lines
    assert "rule nbsweep_run" not in text and "CalledProcessError" not in text


def test_one_run_to_execute_is_singular(project):
    project.notebook("echo", ["print(x)"], "x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/echo.ipynb", "label": "a"}]})
    proc = project.snakemake()
    assert "nbsweep: 1 run to execute" in proc.stderr.splitlines() and "1 runs" not in proc.stderr


SNAKEMAKE_REASONS = ("reason:", "Updated input files", "Missing output files", "missing provenance", "rule nbsweep_run", "Job stats")


def test_dry_run_lists_each_run_with_nbsweeps_reason_then_the_count(project):
    """One line per run that would execute, in config order, with the reason nbsweep decided (the
    same words as `nbsweep status`), for every kind of reason; Snakemake's own with --verbose."""
    project.notebook("calc", ["y = z * 2", "if z == 0:\n    raise ValueError('z is zero')"], "z = 1.0")
    project.notebook("code", ["w = z + 1", "print(w)"], "z = 1.0")
    project.notebook("down", ["print(len(upstream))"], "upstream = []")
    (project.root / "data").mkdir()
    (project.root / "data/x.csv").write_text("a\n1\n")
    calc = "notebooks/calc.ipynb"
    runs = [
        {"notebook": calc, "label": "p", "parameters": {"z": 2.5}},
        {"notebook": calc, "label": "f", "parameters": {"z": 0}},
        {"notebook": calc, "label": "i", "parameters": {"z": 1.5}, "inputs": ["data/x.csv"]},
        {"notebook": "notebooks/code.ipynb", "label": "c"},
        {"notebook": "notebooks/down.ipynb", "label": "d", "after": ["calc/p"]},
        {"notebook": calc, "label": "u", "parameters": {"z": 3.5}},
    ]
    project.write_config({"runs": runs})
    assert project.snakemake(check=False).returncode != 0  # calc/f fails
    runs[0]["parameters"]["z"] = 2.0
    runs.append({"notebook": calc, "label": "n"})
    project.write_config({"runs": runs})
    (project.root / "data/x.csv").write_text("a\n2\n")
    project.notebook("code", ["w = z + 1", "print(w * 2)"], "z = 1.0")
    before = project.outputs()

    dry = project.snakemake("-n", "--forcerun", "papermill_outputs/calc/u/calc_u.ipynb")
    assert [line for line in dry.stdout.splitlines() if not line.startswith(PROFILE_LINE)] == [
        "calc/p: parameters changed: z 2.5 → 2.0",
        "calc/f: failed last time",
        "calc/i: input data/x.csv changed",
        "code/c: template code changed in cell 4 (`print(w * 2)`)",
        "down/d: upstream run calc/p executes",
        "calc/u: forced",
        "calc/n: never run",
        "nbsweep: 7 runs would execute (Snakemake's reasons: --verbose)",
    ], dry.stdout + dry.stderr
    for noise in SNAKEMAKE_REASONS:
        assert noise not in dry.stdout + dry.stderr
    assert project.outputs() == before  # a dry-run executes nothing
    status = project.nbsweep("status").stdout
    assert "calc/p  stale       parameters changed: z 2.5 → 2.0" in status  # the same words
    assert "code/c  stale       template code changed in cell 4 (`print(w * 2)`)" in status

    verbose = project.snakemake("-n", "--verbose")
    assert "reason:" in verbose.stdout and "rule nbsweep_run" in verbose.stdout


def test_clock_and_progress_line():
    assert [clock(s) for s in (0, 59.6, 75, 3725)] == ["0:00", "1:00", "1:15", "1:02:05"]
    progress = Progress(total=10, ok=3, failed=1, running={7, 8}, started=100.0)
    assert progress.line(160.0) == "nbsweep: 4/10 runs done (3 ok, 1 failed), 2 running, 1:00 elapsed, ETA 1:30"
    assert Progress(total=2, ok=2, started=0.0).line(5.0) == "nbsweep: 2/2 runs done (2 ok), 0 running, 0:05 elapsed"
    stopped = Progress(total=6, ok=1, interrupted=3, started=0.0)
    assert stopped.line(65.0) == "nbsweep: 4/6 runs done (1 ok, 3 interrupted), 0 running, 1:05 elapsed, ETA 0:32"  # runs alone
    interrupts.stopping.set()  # the sweep itself is being interrupted
    try:
        assert stopped.line(65.0) == "nbsweep: interrupted after 1:05: 1 ok, 3 interrupted, 2 not started"
    finally:
        interrupts.stopping.clear()
