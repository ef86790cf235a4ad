"""Attacks on ``preload`` through a zygote: what a demanding user or a hostile environment does to it.

Real snakemake, real kernels, the warm runner of each test's own temp dir. Where a forked kernel
is compared with a fresh one, the same notebook runs with ``NBSWEEP_WARM_RUNNER=0`` (its cells
import the modules themselves) and what it printed must be the same.
"""

import json
import os
import signal

import psutil
import pytest
from conftest import Project, alive, stdout_of, wait_for
from test_warm import kernel_processes, servers, stop_server

FORKED = "import psutil\nprint('FORKED', any(arg.endswith('zygote.py') for arg in psutil.Process().parent().cmdline()))"


@pytest.fixture
def attack(project, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("attacktmp")))  # a server of this test's own
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    yield project
    stop_server(project)


def configure(project, preload, runs=2, **defaults):
    project.write_config(
        {
            "defaults": {"preload": preload, **defaults},
            "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(runs))}}],
        }
    )


def printed(project, label) -> dict:
    """What the run printed, by the first word of each line."""
    lines = stdout_of(project.target("w", label)).splitlines()
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if " " in line}


def status(project, label) -> str:
    return json.loads(project.target("w", label).read_text())["metadata"]["nbsweep"]["status"]


def forked_then_fresh(project, monkeypatch, labels, cores=2) -> tuple[dict, dict]:
    """What each run printed on forked kernels, then on fresh in-process kernels."""
    project.snakemake("--cores", str(cores))
    forked = {label: printed(project, label) for label in labels}
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    project.snakemake("--cores", str(cores), "--forceall")
    fresh = {label: printed(project, label) for label in labels}
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER")
    return forked, fresh


def zygotes(tmpdir) -> list:
    """Zygote processes of this test (their environment names its temp dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(arg.endswith("zygote.py") for arg in proc.info["cmdline"] or []) and proc.environ().get("TMPDIR") == str(tmpdir):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def with_env(tmpdir, words) -> list:
    """Processes whose command line is ``words`` and whose environment names ``tmpdir``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.info["cmdline"] == words and proc.environ().get("TMPDIR") == str(tmpdir) and alive(proc.pid):
                found.append(proc)
        except psutil.Error:
            pass
    return found


# --- modules that misbehave at import -------------------------------------------------------


@pytest.mark.xfail(strict=True, reason="the zygote ignores SIGCHLD while importing: a child's exit status is lost (0 / -1)")
def test_a_module_that_runs_a_command_at_import_sees_its_exit_status(attack, monkeypatch):
    p = attack
    (p.root / "rc_module.py").write_text(
        "import os, subprocess\nRC = subprocess.run(['sh', '-c', 'exit 3']).returncode\nSYSTEM = os.system('exit 5')\n"
    )
    p.notebook("w", [FORKED, "import rc_module\nprint('RC', rc_module.RC, rc_module.SYSTEM)"], "x = 0")
    configure(p, ["rc_module"])
    forked, fresh = forked_then_fresh(p, monkeypatch, ["r0", "r1"])
    assert forked["r0"]["FORKED"] == "True"
    assert fresh["r0"]["RC"] == "3 1280"
    assert [forked[label]["RC"] for label in ("r0", "r1")] == ["3 1280", "3 1280"]


@pytest.mark.xfail(strict=True, reason="a forked kernel takes the request's environment: what an import set in os.environ is lost")
def test_what_a_module_sets_in_the_environment_at_import_stays_set(attack, monkeypatch):
    p = attack
    (p.root / "env_module.py").write_text("import os\nos.environ['NBSWEEP_SET_AT_IMPORT'] = 'yes'\n")
    p.notebook("w", [FORKED, "import os, env_module\nprint('ENV', os.environ.get('NBSWEEP_SET_AT_IMPORT'))"], "x = 0")
    configure(p, ["env_module"])
    forked, fresh = forked_then_fresh(p, monkeypatch, ["r0", "r1"])
    assert forked["r0"]["FORKED"] == "True"
    assert fresh["r0"]["ENV"] == "yes"
    assert forked["r0"]["ENV"] == forked["r1"]["ENV"] == "yes"


@pytest.mark.xfail(strict=True, reason="zygote.become_kernel's sys.path.remove('') raises ValueError: every forked kernel dies at start")
def test_a_module_that_takes_the_kernels_directory_off_sys_path_at_import(attack, monkeypatch):
    """Some packages drop ``''`` from ``sys.path`` so the working directory can't shadow them."""
    p = attack
    (p.root / "path_module.py").write_text("import sys\nwhile '' in sys.path:\n    sys.path.remove('')\n")
    p.notebook("w", [FORKED, "import path_module\nprint('DONE', x)"], "x = 0")
    configure(p, ["path_module"])
    p.snakemake("--cores", "2")
    for x in range(2):
        assert status(p, f"r{x}") == "ok"
        assert printed(p, f"r{x}")["DONE"] == str(x)


def test_a_module_that_exits_or_prints_a_lot_at_import_leaves_runs_on_fresh_kernels(attack):
    p = attack
    (p.root / "loud_module.py").write_text("import sys\nfor i in range(20000):\n    print('noise' * 20)\nsys.stdout.flush()\n")
    (p.root / "exit_module.py").write_text("raise SystemExit(3)\n")
    p.notebook("w", [FORKED, "import sys\nprint('LOADED', sorted(m for m in sys.modules if m.endswith('_module')))"], "x = 0")
    configure(p, ["loud_module", "exit_module"])
    proc = p.snakemake("--cores", "2")
    for x in range(2):
        assert status(p, f"r{x}") == "ok"
        assert printed(p, f"r{x}")["LOADED"] == "[]"  # nothing half-imported is handed to a run
        assert "could not preload loud_module, exit_module" in p.target("w", f"r{x}").with_suffix(".log").read_text()
    assert "noise" not in proc.stderr


def test_a_slow_import_is_waited_for(attack):
    p = attack
    (p.root / "slow_module.py").write_text("import time\ntime.sleep(3)\n")
    p.notebook("w", [FORKED, "import sys\nprint('LOADED', 'slow_module' in sys.modules)"], "x = 0")
    configure(p, ["slow_module"], runs=3)
    p.snakemake("--cores", "2")
    for x in range(3):
        assert printed(p, f"r{x}") == {"FORKED": "True", "LOADED": "True"}


@pytest.mark.xfail(strict=True, reason="a process a module starts at import outlives the sweep: the zygote waits for it forever")
def test_a_helper_process_a_module_starts_at_import_ends_with_the_server(attack):
    p = attack
    helper = ["sleep", "917"]
    (p.root / "helper_module.py").write_text(f"import subprocess\nsubprocess.Popen({helper!r})\n")
    p.notebook("w", [FORKED], "x = 0")
    configure(p, ["helper_module"])
    p.snakemake("--cores", "2")
    assert printed(p, "r0")["FORKED"] == "True"
    tmpdir = os.environ["TMPDIR"]
    stop_server(p)
    assert wait_for(lambda: not servers(tmpdir), 10)
    assert wait_for(lambda: not with_env(tmpdir, helper) and not zygotes(tmpdir), 10), "the zygote or its helper outlived the server"


# --- notebooks that do unusual things on a forked kernel --------------------------------------

KERNEL_WORK = [
    FORKED,
    "import multiprocessing, math\n"
    "with multiprocessing.get_context('fork').Pool(2) as pool:\n    print('MPFORK', pool.map(math.sqrt, [1, 4, 9]))\n"
    "with multiprocessing.get_context('spawn').Pool(2) as pool:\n    print('MPSPAWN', pool.map(math.sqrt, [16, 25]))",
    "import os\npid = os.fork()\nif pid == 0:\n    os._exit(7)\nprint('OSFORK', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))",
    "import subprocess\nouts = [subprocess.run(['sh', '-c', f'echo {i}; exit {i % 3}'], capture_output=True, text=True) for i in range(30)]\n"
    "print('SUBPROCESS', sum(int(o.stdout) for o in outs), [o.returncode for o in outs[:6]])",
    "import sys\nprint('STDIN', repr(sys.stdin.readline()) if not sys.stdin.isatty() else 'tty')",
    "import sys\nsys.stdout.write('z' * 10_000_000 + '\\n')\nos.write(1, b'y' * 1_000_000)\nprint('BIG done')",
]


def test_a_forked_kernel_runs_processes_and_large_outputs_as_a_fresh_one(attack, monkeypatch):
    p = attack
    p.notebook("w", KERNEL_WORK, "x = 0")
    configure(p, ["fractions"])
    forked, fresh = forked_then_fresh(p, monkeypatch, ["r0", "r1"])
    assert forked["r0"]["FORKED"] == "True" and fresh["r0"]["FORKED"] == "False"
    for label in ("r0", "r1"):
        forked[label].pop("FORKED"), fresh[label].pop("FORKED")
        assert forked[label] == fresh[label]
        assert len(stdout_of(p.target("w", label))) > 10_000_000


def test_a_cell_timeout_on_a_forked_kernel_fails_the_run(attack):
    p = attack
    p.notebook("w", [FORKED, "import time\nif x == 0:\n    time.sleep(60)\nprint('DONE', x)"], "x = 0")
    configure(p, ["fractions"], timeout=2)
    proc = p.snakemake("--cores", "2", "--keep-going", check=False, timeout=60)
    assert proc.returncode != 0
    assert status(p, "r1") == "ok" and printed(p, "r1") == {"FORKED": "True", "DONE": "1"}
    assert not p.target("w", "r0").exists()
    failed = p.target("w", "r0").with_suffix(".failed.ipynb")
    assert failed.exists()
    assert "timed out" in (failed.read_text() + proc.stderr).lower() or "timeout" in (failed.read_text() + proc.stderr).lower()
    assert wait_for(lambda: not kernel_processes(os.environ["TMPDIR"]), 10)


def test_runs_on_forked_kernels_draw_their_own_random_names_and_numbers(attack):
    p = attack
    (p.root / "rng_module.py").write_text(
        "import os, random, secrets, tempfile, uuid\n"
        "fd, name = tempfile.mkstemp()\nos.close(fd)\nos.unlink(name)\n"  # tempfile's name sequence made in the zygote
        "DRAW = random.random()\n"
    )
    code = (
        "import os, random, secrets, tempfile, uuid\n"
        "fd, name = tempfile.mkstemp()\nos.close(fd)\nos.unlink(name)\n"
        "print('TEMP', os.path.basename(name))\nprint('RANDOM', random.random())\nprint('UUID', uuid.uuid4())\n"
        "print('SECRET', secrets.token_hex(8))\nprint('NAME', next(tempfile._get_candidate_names()))"
    )
    p.notebook("w", [FORKED, "import rng_module", code], "x = 0")
    configure(p, ["rng_module"], runs=4)
    p.snakemake("--cores", "2")
    seen = [printed(p, f"r{x}") for x in range(4)]
    assert {out["FORKED"] for out in seen} == {"True"}
    for key in ("TEMP", "RANDOM", "UUID", "SECRET", "NAME"):
        assert len({out[key] for out in seen}) == 4, key


# --- several invocations, and processes killed under a sweep ----------------------------------


def projects(root, count) -> list[Project]:
    made = []
    for i in range(count):
        sub = Project(root / f"p{i}")
        sub.root.mkdir()
        sub.notebook("w", [FORKED, f"import time\ntime.sleep(1)\nprint('DONE', x, {i})"], "x = 0")
        configure(sub, ["fractions", "json"] if i % 2 else ["fractions"], runs=3)
        made.append(sub)
    return made


@pytest.mark.parametrize("count", [2, 3])
def test_invocations_at_once_in_projects_with_their_own_zygotes(attack, tmp_path, count):
    """Three settings at once: the first zygote is dismissed while its kernels run."""
    subs = projects(tmp_path, count)
    procs = [sub.popen("--cores", "1", cores=1) for sub in subs]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    for i, sub in enumerate(subs):
        for x in range(3):
            assert status(sub, f"r{x}") == "ok"
            assert printed(sub, f"r{x}")["DONE"] == f"{x} {i}"
    tmpdir = os.environ["TMPDIR"]
    stop_server(attack)
    assert wait_for(lambda: not servers(tmpdir) and not zygotes(tmpdir) and not kernel_processes(tmpdir), 15)


def sweep_under_fire(project, victim, runs=10):
    """Start a sweep of ``runs`` on 2 cores and SIGKILL ``victim()``'s processes once two runs are done."""
    project.notebook("w", [FORKED, "import time\ntime.sleep(0.5)\nprint('DONE', x)"], "x = 0")
    configure(project, ["fractions"], runs=runs)
    proc = project.popen("--cores", "2", "--keep-going")
    done = lambda: sum(project.target("w", f"r{x}").exists() for x in range(runs))  # noqa: E731
    assert wait_for(lambda: done() >= 2 or proc.poll() is not None, 60)
    killed = victim()
    for target in killed:
        target.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    for x in range(runs):
        target = project.target("w", f"r{x}")
        if target.exists():
            assert status(project, f"r{x}") == "ok" and printed(project, f"r{x}")["DONE"] == str(x)  # never a wrong "ok"
    return proc, killed


@pytest.mark.parametrize("victim", ["server", "zygote"])
def test_a_sweep_survives_its_server_or_zygote_being_killed(attack, victim):
    tmpdir = os.environ["TMPDIR"]
    find = {"server": lambda: servers(tmpdir), "zygote": lambda: zygotes(tmpdir)}[victim]
    proc, killed = sweep_under_fire(attack, find)
    assert killed, f"no {victim} to kill"
    assert proc.returncode == 0  # every run ends ok: the runs executing finish, later ones get a new server or kernel
    for x in range(10):
        assert status(attack, f"r{x}") == "ok"
    stop_server(attack)
    assert wait_for(lambda: not servers(tmpdir) and not zygotes(tmpdir) and not kernel_processes(tmpdir), 15), "something outlived"


def test_a_sweep_whose_kernels_are_killed_reports_them_failed(attack):
    tmpdir = os.environ["TMPDIR"]
    proc, killed = sweep_under_fire(attack, lambda: kernel_processes(tmpdir))
    assert killed
    assert proc.returncode != 0
    failed = [x for x in range(10) if not attack.target("w", f"r{x}").exists()]
    assert failed and all(attack.target("w", f"r{x}").with_suffix(".failed.ipynb").exists() for x in failed)
    stop_server(attack)
    assert wait_for(lambda: not servers(tmpdir) and not zygotes(tmpdir) and not kernel_processes(tmpdir), 15)
