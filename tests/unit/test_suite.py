"""The suite's own machinery, which the e2e modules' time and correctness rest on."""

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import alive, wait_for


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


PROBE = """
import json, os, sys, tempfile
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "tmp": tempfile.gettempdir(), "marker": os.environ.get("PROBE_MARKER"), "main": __name__}))
print("on stderr\\r\\nwindows line", file=sys.stderr)
signal = os.environ.get("PROBE_SIGNAL")
if signal:
    os.kill(os.getpid(), int(signal))
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""


def probe(tmp_path, monkeypatch, prefork: str, **env: str) -> subprocess.CompletedProcess:
    from preforked import python_m

    (tmp_path / "probe_module.py").write_text(PROBE)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setenv("NBSWEEP_TESTS_PREFORK", prefork)
    environment = {**os.environ, "PROBE_MARKER": "m", "TMPDIR": str(tmp_path / "tmp"), **env}
    return python_m("probe_module", ["a b", "--c"], tmp_path, environment, timeout=60)


@pytest.mark.parametrize("env", [{}, {"PROBE_EXIT": "3"}, {"PROBE_SIGNAL": str(signal.SIGTERM)}])
def test_a_preforked_command_is_what_a_fresh_interpreter_would_run(tmp_path, monkeypatch, env):
    """The e2e tests run Snakemake and ``nbsweep`` forked from a launcher that has imported them
    (``tests/preforked.py``): arguments, folder, environment, ``TMPDIR``, ``sys.path[0]``, streams
    (with universal newlines) and the exit code or signal must be those of ``python -m``."""
    fresh = probe(tmp_path, monkeypatch, "0", **env)
    forked = probe(tmp_path, monkeypatch, "1", **env)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert json.loads(fresh.stdout)["tmp"] == str(tmp_path / "tmp") and "\r" not in fresh.stderr


def test_a_preforked_command_past_its_timeout_is_killed(tmp_path, monkeypatch):
    from preforked import python_m

    (tmp_path / "sleeper.py").write_text("import os, pathlib, time\npathlib.Path('pid').write_text(str(os.getpid()))\ntime.sleep(60)\n")
    monkeypatch.setenv("NBSWEEP_TESTS_PREFORK", "1")
    with pytest.raises(subprocess.TimeoutExpired):
        python_m("sleeper", [], tmp_path, dict(os.environ), timeout=3)
    pid = int((tmp_path / "pid").read_text())
    assert wait_for(lambda: not alive(pid), timeout=10)
