"""Reliability suite: random SIGKILLs mid-sweep, and fuzzed bad configs."""

import json
import random
import signal
import time

import psutil
import pytest
import yaml
from conftest import descendants

from nbsweep.errors import SweepError
from nbsweep.packaged import SCHEMA
from nbsweep.provenance.sweep import Sweep


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started, as a crash or OOM killer would."""
    try:
        parent = psutil.Process(pid)
        procs = [parent, *descendants(parent)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


@pytest.mark.slow  # a stress test: five invocations killed at random moments, then the rest of 40 runs
def test_random_sigkills_lose_no_work(project):
    project.notebook("nap", ["import time\ntime.sleep(seconds)"], "seconds = 0.0\ni = 0")
    project.write_config(
        {"runs": [{"notebook": "notebooks/nap.ipynb", "label": "r{i}", "grid": {"i": list(range(40))}, "parameters": {"seconds": 0.3}}]}
    )
    targets = [project.target("nap", f"r{i}") for i in range(40)]
    rng = random.Random(20261125)
    completed: dict = {}
    for _ in range(5):
        sm = project.popen(cores=2)
        # Kill at a random moment after this invocation has finished at least one run (or has ended).
        done_before = sum(t.exists() for t in targets)
        deadline = time.monotonic() + 120
        while sum(t.exists() for t in targets) == done_before and sm.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.0))
        kill_tree(sm.pid)
        sm.wait(timeout=30)
        for target in targets:
            if target.exists() and target not in completed:
                nb = json.loads(target.read_text())  # complete, valid JSON
                assert nb["metadata"]["nbsweep"]["status"] == "ok"
                completed[target] = target.stat().st_mtime_ns
    assert 0 < len(completed) < len(targets)
    project.snakemake()
    for target in targets:
        assert json.loads(target.read_text())["metadata"]["nbsweep"]["status"] == "ok"
    assert {t: t.stat().st_mtime_ns for t in completed} == completed, "a completed run was re-executed"
    assert not list(project.out.rglob(".*.partial.ipynb"))


GOOD_RUN = {"notebook": "notebooks/echo.ipynb", "label": "ok", "parameters": {"x": 1}}
ODD_VALUES = [None, True, -1, 0, 2.5, "", " ", "x" * 300, "../../etc", "/abs", "a b", "{x}", "é", [], [1], {}, {"k": "v"}]
# Values that pass a JSON schema but that papermill, Snakemake or JSON cannot take.
ODD_VALUES += [float("nan"), float("inf"), 1e-3, {"x": float("nan")}, {"class": 1}, {1: "one"}, {"mem_mb": "lots"}, {"x": [1e400]}]
KEYS = ["notebook", "label", "parameters", "grid", "inputs", "kernel", "timeout", "threads", "resources", "batch_size", "lable", "runs"]


def fuzzed_configs(seed: int, count: int):
    """Malformed variants of a valid config: wrong types, unknown keys, odd labels, broken structure."""
    rng = random.Random(seed)
    for _ in range(count):
        run = dict(GOOD_RUN)
        for _ in range(rng.randint(1, 3)):
            run[rng.choice(KEYS)] = rng.choice(ODD_VALUES)
        shape = rng.random()
        if shape < 0.1:
            yield {"runs": run}
        elif shape < 0.2:
            yield {"defaults": {rng.choice(KEYS): rng.choice(ODD_VALUES)}, "runs": [GOOD_RUN]}
        elif shape < 0.3:
            yield {"runs": [GOOD_RUN, dict(GOOD_RUN)]}  # duplicate label
        else:
            yield {"runs": [GOOD_RUN, run]}


@pytest.fixture
def fuzz_project(project, monkeypatch):
    project.notebook("echo", ["print(x)"], "x = 0")
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("JUPYTER_PATH", str(project.root / "share" / "jupyter"))
    return project


def test_fuzzed_configs_fail_with_one_sentence(fuzz_project):
    """In-process: every malformed config is a SweepError (never another exception) or valid."""
    path = fuzz_project.root / "config" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    outcomes = {"rejected": 0, "valid": 0}
    for config in fuzzed_configs(seed=7, count=300):
        path.write_text(yaml.safe_dump(config))
        try:
            Sweep.load([path], SCHEMA)
            outcomes["valid"] += 1
        except SweepError as err:
            message = str(err)
            assert "\n" not in message and len(message) < 1200, message
            assert message.startswith(str(path.relative_to(fuzz_project.root))) or "config.yaml" in message, message
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 200


def test_fuzzed_files_through_snakemake(fuzz_project):
    fuzz_project.write_config({"runs": [GOOD_RUN]})
    fuzz_project.snakemake()
    before = fuzz_project.outputs()
    path = fuzz_project.root / "config" / "config.yaml"
    samples = [
        b"",
        b"\x00\x01\x02",
        bytes(range(128, 192)),
        b"runs:\n\t- notebook: x\n",
        b"runs: [" * 5000,
        yaml.safe_dump({"runs": [{**GOOD_RUN, "label": "x" * 5000}]}).encode(),
        yaml.safe_dump({"runs": [GOOD_RUN, {**GOOD_RUN, "label": "b", "threads": [1]}]}).encode(),
        b"runs:\n  - {notebook: notebooks/echo.ipynb, label: a, label: b}\n",
        b"runs:\n  - {notebook: notebooks/echo.ipynb, label: a, parameters: {x: .nan}}\n",
        b"runs:\n  - {notebook: notebooks/echo.ipynb, label: a, resources: {mem_mb: lots}}\n",
        b"runs:\n  - {notebook: notebooks/echo.ipynb, label: a, parameters: {1: one}}\n",
    ]
    for content in samples:
        path.write_bytes(content)
        proc = fuzz_project.snakemake(check=False)
        assert proc.returncode != 0, content[:40]
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert sum(line.startswith("nbsweep: ") for line in proc.stderr.splitlines()) == 1, proc.stderr[-2000:]
        assert fuzz_project.outputs() == before
