"""Attacks on ``preload`` through a zygote: what a demanding user or a hostile environment does to it.

Real snakemake, real kernels, the warm runner of each test's own temp dir. Where a forked kernel
is compared with a fresh one, the same notebook runs with ``NBSWEEP_WARM_RUNNER=0`` (its cells
import the modules themselves) and what it printed must be the same.
"""

import json
import os
import re
import signal
import subprocess

import psutil
import pytest
from conftest import SNAKEFILE, SNAKEMAKE, Project, alive, stdout_of, wait_for

from .test_forking import configure, forking_project, printed  # noqa: F401 -- forking_project: a fixture, for ``attack``
from .test_warm import kernel_processes, servers, stop_server

FORKED = "import psutil\nprint('FORKED', any(arg.endswith('zygote.py') for arg in psutil.Process().parent().cmdline()))"


@pytest.fixture
def attack(forking_project):  # noqa: F811 -- the fixture imported above
    """A project with a warm runner of its own (``test_forking.forking_project``)."""
    return forking_project


def forked_then_fresh(project, monkeypatch, labels, cores=2) -> tuple[dict, dict]:
    """What each run printed on forked kernels, then on fresh in-process kernels."""
    project.snakemake("--cores", str(cores))
    forked = {label: printed(project, label) for label in labels}
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    project.snakemake("--cores", str(cores), "--forceall")
    fresh = {label: printed(project, label) for label in labels}
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER")
    return forked, fresh


def zygote_processes(tmpdir, kernels: bool) -> list:
    """This test's zygotes (``kernels``: the kernels forked from them, which show the zygote's command line
    and environment; they are the zygote's children, or have threads of their own once the zygote has gone)."""

    def zygote_like(proc):
        return any(arg.endswith("zygote.py") for arg in proc.cmdline()) and proc.environ().get("TMPDIR") == str(tmpdir)

    found = []
    for proc in psutil.process_iter():
        try:
            if zygote_like(proc) and alive(proc.pid):
                parent = proc.parent()
                forked = (parent is not None and zygote_like(parent)) or proc.num_threads() > 1
                if forked == kernels:
                    found.append(proc)
        except psutil.Error:
            pass
    return found


def zygotes(tmpdir) -> list:
    return zygote_processes(tmpdir, kernels=False)


def all_kernels(tmpdir) -> list:
    """Kernels started and kernels forked."""
    return kernel_processes(tmpdir) + zygote_processes(tmpdir, kernels=True)


def leftovers(tmpdir) -> list[str]:
    """What of this test's warm runner still runs: servers (and their children), zygotes, kernels."""
    found = [("server", servers(tmpdir)), ("zygote", zygotes(tmpdir)), ("kernel", all_kernels(tmpdir))]
    described = []
    for what, procs in found:
        for proc in procs:
            try:
                described.append(f"{what} {proc.pid} (parent {proc.ppid()})")
            except psutil.Error:
                pass  # it ended since it was listed: not left over
    return described


def nothing_left(tmpdir) -> bool:
    return not leftovers(tmpdir)


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


def test_what_modules_do_at_import_a_forked_kernel_keeps_as_a_fresh_one(attack, monkeypatch, tmp_path):
    """Commands run at import see their exit status (SIGCHLD is ignored only after the imports);
    what an import sets in the environment, the directory or umask it changes to, and taking ``''``
    off ``sys.path`` (some packages do, so the working directory can't shadow them) stay as in a
    fresh kernel that imported the modules."""
    p = attack
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    modules = {
        "rc_module": "import os, subprocess\nRC = subprocess.run(['sh', '-c', 'exit 3']).returncode\nSYSTEM = os.system('exit 5')\n",
        "env_module": "import os\nos.environ['NBSWEEP_SET_AT_IMPORT'] = 'yes'\n",
        "cd_module": f"import os\nos.chdir({str(elsewhere)!r})\nos.umask(0o027)\n",
        "path_module": "import sys\nwhile '' in sys.path:\n    sys.path.remove('')\n",  # found in the directory cd_module moved to
    }
    for name, code in modules.items():
        (elsewhere if name == "path_module" else p.root).joinpath(f"{name}.py").write_text(code)
    probe = (
        "import os, rc_module, env_module, cd_module, path_module\n"
        "print('RC', rc_module.RC, rc_module.SYSTEM)\nprint('ENV', os.environ.get('NBSWEEP_SET_AT_IMPORT'))\n"
        "print('CWD', os.getcwd())\nmask = os.umask(0)\nos.umask(mask)\nprint('UMASK', oct(mask))"
    )
    p.notebook("w", [FORKED, probe], "x = 0")
    configure(p, list(modules))
    forked, fresh = forked_then_fresh(p, monkeypatch, ["r0", "r1"])
    expected = {"RC": "3 1280", "ENV": "yes", "CWD": str(elsewhere), "UMASK": "0o27"}
    assert fresh["r0"] == {"FORKED": "False", **expected}
    assert forked["r0"] == forked["r1"] == {"FORKED": "True", **expected}


def test_a_module_that_exits_or_prints_a_lot_at_import_leaves_runs_on_fresh_kernels(attack):
    p = attack
    (p.root / "loud_module.py").write_text("import sys\nfor i in range(20000):\n    print('noise' * 20)\nsys.stdout.flush()\n")
    (p.root / "exit_module.py").write_text("raise SystemExit(3)\n")
    p.notebook("w", [FORKED, "import sys\nprint('LOADED', sorted(m for m in sys.modules if m.endswith('_module')))"], "x = 0")
    configure(p, ["loud_module", "exit_module"])
    proc = p.snakemake("--cores", "2")
    for x in range(2):
        assert p.record("w", f"r{x}")["status"] == "ok"
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


def test_a_helper_process_a_module_starts_at_import_ends_with_the_server(attack):
    """Forks would share it: the modules are imported in started kernels instead; and it ends with its zygote."""
    p = attack
    helper = ["sleep", "917"]
    (p.root / "helper_module.py").write_text(f"import subprocess\nsubprocess.Popen({helper!r})\n")
    p.notebook("w", [FORKED], "x = 0")
    configure(p, ["helper_module"])
    p.snakemake("--cores", "2")
    assert [printed(p, f"r{x}")["FORKED"] for x in range(2)] == ["False", "False"]
    tmpdir = os.environ["TMPDIR"]
    stop_server(p)
    try:
        assert wait_for(lambda: not servers(tmpdir), 10)
        assert wait_for(lambda: not with_env(tmpdir, helper) and not zygotes(tmpdir), 10), "the zygote or its helper outlived the server"
    finally:
        for proc in with_env(tmpdir, helper) + zygotes(tmpdir):
            proc.kill()


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
    configure(p, ["fractions"], runs=1)
    forked, fresh = forked_then_fresh(p, monkeypatch, ["r0"])
    assert forked["r0"]["FORKED"] == "True" and fresh["r0"]["FORKED"] == "False"
    for label in ("r0",):
        forked[label].pop("FORKED"), fresh[label].pop("FORKED")
        assert forked[label] == fresh[label]
        assert len(stdout_of(p.target("w", label))) > 10_000_000


def test_a_cell_timeout_on_a_forked_kernel_fails_the_run(attack):
    p = attack
    p.notebook("w", [FORKED, "import time\nif x == 0:\n    time.sleep(60)\nprint('DONE', x)"], "x = 0")
    configure(p, ["fractions"], timeout=2)
    proc = p.snakemake("--cores", "2", "--keep-going", check=False, timeout=60)
    assert proc.returncode != 0
    assert p.record("w", "r1")["status"] == "ok" and printed(p, "r1") == {"FORKED": "True", "DONE": "1"}
    assert not p.target("w", "r0").exists()
    failed = p.target("w", "r0").with_suffix(".failed.ipynb")
    assert failed.exists()
    assert "timed out" in (failed.read_text() + proc.stderr).lower() or "timeout" in (failed.read_text() + proc.stderr).lower()
    assert wait_for(lambda: not all_kernels(os.environ["TMPDIR"]), 10)


@pytest.mark.parametrize("how", ["forked", "in-process"])
def test_a_forked_kernel_that_exits_in_a_cell_fails_its_run_only(attack, monkeypatch, how):
    """The kernel is the zygote's child, not its owner's: its death is seen through its pidfd, not a wait."""
    p = attack
    if how == "in-process":
        monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    p.notebook("w", [FORKED, "import os\nif x == 0:\n    os._exit(3)\nprint('DONE', x)"], "x = 0")
    configure(p, ["fractions"], runs=2)
    proc = p.snakemake("--cores", "2", "--keep-going", check=False, timeout=90)
    assert proc.returncode != 0
    assert not p.target("w", "r0").exists() and p.target("w", "r0").with_suffix(".failed.ipynb").exists()
    assert "run w/r0 FAILED" in proc.stderr and "Traceback" not in proc.stderr
    assert printed(p, "r1") == {"FORKED": str(how == "forked"), "DONE": "1"}


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
            assert sub.record("w", f"r{x}")["status"] == "ok"
            assert printed(sub, f"r{x}")["DONE"] == f"{x} {i}"
    tmpdir = os.environ["TMPDIR"]
    stop_server(attack)
    assert wait_for(lambda: nothing_left(tmpdir), 15), leftovers(tmpdir)


def start_snakemake(project, *args) -> subprocess.Popen:
    """Snakemake in the background, its stderr in ``snakemake.err``."""
    with open(project.root / "snakemake.err", "w") as err:
        cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), *args]
        return subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.DEVNULL, stderr=err, env=project.env)


def sweep_under_fire(project, victim, runs=6, preload=("fractions",), nap=0.5):
    """Start a sweep of ``runs`` on 2 cores (from ``r2`` on, each naps ``nap`` seconds) and SIGKILL
    ``victim(snakemake)``'s processes once two runs are done (and, with a longer nap, one is under way). Sets ``project.failures`` (runs without a notebook: their logs) and ``project.executing``
    (runs executing when the victims were killed)."""
    project.notebook("w", [FORKED, f"import time\ntime.sleep({nap} if x >= 2 else 0.5)\nprint('DONE', x)"], "x = 0")
    configure(project, list(preload), runs=runs)
    proc = start_snakemake(project, "--cores", "2", "--keep-going")
    done = lambda: sum(project.target("w", f"r{x}").exists() for x in range(runs))  # noqa: E731
    cut_short = lambda: nap <= 0.5 or executing(project, runs)  # noqa: E731 -- a long nap: wait for a run under way
    assert wait_for(lambda: (done() >= 2 and cut_short()) or proc.poll() is not None, 240)
    killed = victim(proc)
    project.executing = executing(project, runs)
    for target in killed:
        try:
            target.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass  # ended meanwhile
    proc.wait(timeout=120)
    project.failures = {
        x: project.target("w", f"r{x}").with_suffix(".log").read_text() for x in range(runs) if not project.target("w", f"r{x}").exists()
    }
    for x in range(runs):
        target = project.target("w", f"r{x}")
        if target.exists():
            assert project.record("w", f"r{x}")["status"] == "ok" and printed(project, f"r{x}")["DONE"] == str(x)  # never a wrong "ok"
    return proc, killed


def server_itself(tmpdir) -> list:
    """The warm server, not its children (spares and runs show its command line)."""
    family = servers(tmpdir)
    return [proc for proc in family if proc.ppid() not in {other.pid for other in family}]


def unread(server) -> int:
    """What the server has not read yet: connections in its listen queue, bytes on its sockets (``ss``'s Recv-Q)."""
    out = subprocess.run(["ss", "-xapH"], capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[2]) for line in out.splitlines() if f"pid={server.pid}," in line)


def executing(project, runs=6) -> set[int]:
    """Runs whose notebook has started executing and not yet ended."""
    return {x for x in range(runs) if not project.target("w", f"r{x}").exists() and "Executing Cell" in project.log("w", f"r{x}")}


def server_between_requests(project, tmpdir, snakemake: subprocess.Popen) -> list:
    """The server, stopped at a moment it has no request unread (one it never read is
    ``test_a_request_the_server_never_read_runs_all_the_same``) and a run is executing: Snakemake and
    its jobs are frozen while its sockets are looked at."""
    import time

    def each(processes, action):
        for proc in processes:
            try:
                getattr(proc, action)()
            except psutil.Error:
                pass  # ended meanwhile

    for _ in range(100):
        frozen, chosen = [], []
        try:
            frozen = [psutil.Process(snakemake.pid)]
            each(frozen, "suspend")  # first: it starts no job meanwhile
            frozen += frozen[0].children(recursive=True)  # its jobs, the server and all it started
            each(frozen[1:], "suspend")
            server = server_itself(tmpdir)
            if server and not unread(server[0]) and executing(project):
                chosen = server
        except psutil.Error:
            pass  # Snakemake has ended
        finally:
            each([proc for proc in frozen if proc not in chosen], "resume")  # the one chosen stays stopped: killed next
        if chosen or snakemake.poll() is not None:
            return chosen
        time.sleep(0.05)
    return []


def test_a_sweep_survives_its_zygote_being_killed(attack):
    """The runs executing finish, later ones get kernels (started and preloaded) all the same."""
    tmpdir = os.environ["TMPDIR"]
    proc, killed = sweep_under_fire(attack, lambda sm: zygotes(tmpdir))
    assert killed
    assert not attack.failures and proc.returncode == 0
    stop_server(attack)
    assert wait_for(lambda: nothing_left(tmpdir), 15), leftovers(tmpdir)


def test_a_sweep_survives_its_server_being_killed(attack):
    """The runs executing finish; a run being handed over may fail, in one sentence; later ones get a new server."""
    tmpdir = os.environ["TMPDIR"]
    proc, killed = sweep_under_fire(attack, lambda sm: server_between_requests(attack, tmpdir, sm))
    assert killed
    assert attack.executing and not attack.executing & set(attack.failures)
    stderr = (attack.root / "snakemake.err").read_text()
    assert "Traceback" not in stderr
    assert all(f"run w/r{x} FAILED" in stderr for x in attack.failures)
    stop_server(attack)
    assert wait_for(lambda: nothing_left(tmpdir), 15), leftovers(tmpdir)


@pytest.mark.parametrize("preload", [["fractions"], []])
def test_a_sweep_whose_server_and_all_its_children_are_killed_reports_runs_executing_interrupted(attack, preload):
    """What ``pkill -9 -f nbsweep.execution.warm_server`` does: runs executing are interrupted, in the
    console, ``nbsweep status`` and the summary alike (a request still queued:
    ``test_a_request_the_server_never_read_runs_all_the_same``), later ones get a new server."""
    tmpdir = os.environ["TMPDIR"]
    proc, killed = sweep_under_fire(attack, lambda sm: servers(tmpdir), preload=preload, nap=5)  # runs r2 on are executing
    assert len(killed) > 1
    stderr = (attack.root / "snakemake.err").read_text()
    status = attack.nbsweep("status").stdout
    summary = {row["label"]: row["status"] for row in json.loads((attack.out / "summary.json").read_text())}
    assert attack.failures, "no run was cut short by the kill: this test tests nothing"
    for x in attack.failures:
        said = "interrupted" if f"run w/r{x} interrupted" in stderr else "failed"
        assert said == "interrupted" or x not in attack.executing, stderr
        assert said == "interrupted" or f"w/r{x} FAILED" in stderr
        assert re.search(rf"^w/r{x} +{said} ", status, re.M) and summary[f"r{x}"] == said, (status, summary)
    assert "interrupted after" not in stderr  # runs were, not the sweep
    stop_server(attack)
    assert wait_for(lambda: nothing_left(tmpdir), 15), leftovers(tmpdir)


def test_a_sweep_whose_kernels_are_killed_reports_them_failed(attack):
    tmpdir = os.environ["TMPDIR"]
    proc, killed = sweep_under_fire(attack, lambda sm: all_kernels(tmpdir))
    assert killed
    assert "Traceback" not in (attack.root / "snakemake.err").read_text()
    assert all(attack.target("w", f"r{x}").with_suffix(".failed.ipynb").exists() for x in attack.failures)
    assert (proc.returncode != 0) == bool(attack.failures)
    stop_server(attack)
    assert wait_for(lambda: nothing_left(tmpdir), 15), leftovers(tmpdir)


def waiting_clients(tmpdir) -> list:
    """Jobs of this test that have sent their request to the server (their thread watching Snakemake runs)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (
                "nbsweep.execution.job" in (proc.info["cmdline"] or [])
                and proc.environ().get("TMPDIR") == str(tmpdir)
                and proc.num_threads() > 1
            ):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def test_a_request_the_server_never_read_runs_all_the_same(attack):
    """The server killed with requests in its listen queue (stopped by a debugger or swapped out, then OOM-killed)."""
    p = attack
    tmpdir = os.environ["TMPDIR"]
    p.notebook("w", [FORKED, "print('DONE', x)"], "x = 0")
    configure(p, ["fractions"], runs=2)
    p.snakemake("--cores", "2")  # the server is up
    [server] = server_itself(tmpdir)
    server.suspend()
    try:
        proc = start_snakemake(p, "--cores", "2", "--forceall")
        assert wait_for(lambda: len(waiting_clients(tmpdir)) == 2, 240)
        assert unread(server) >= 2
    finally:
        server.kill()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in (p.root / "snakemake.err").read_text()
    assert [printed(p, f"r{x}")["DONE"] for x in range(2)] == ["0", "1"]


def test_a_random_generator_made_at_import_differs_between_runs(attack):
    """Research code's ``utils.py`` often holds ``rng = np.random.default_rng()``; fresh kernels each get
    their own (forks would repeat the zygote's: the modules are imported in started kernels instead)."""
    p = attack
    (p.root / "rng_utils.py").write_text("import random\nimport numpy as np\nrng = np.random.default_rng()\nR = random.Random()\n")
    p.notebook("w", [FORKED, "import rng_utils\nprint('DRAW', rng_utils.rng.random(), rng_utils.R.random())"], "x = 0")
    configure(p, ["rng_utils"], runs=3)
    p.snakemake("--cores", "2")
    seen = [printed(p, f"r{x}") for x in range(3)]
    assert {out["FORKED"] for out in seen} == {"False"}
    assert len({out["DRAW"] for out in seen}) == 3


def test_joblib_and_scikit_learn_are_preloaded_through_the_zygote(attack):
    """Their imports make a ``tempfile._RandomNameSequence`` of their own, which makes a new generator in a
    new process as tempfile's does: forks do not share it."""
    p = attack
    p.notebook("w", [FORKED, "import sklearn, joblib, random\nprint('DRAW', random.random())"], "x = 0")
    configure(p, ["joblib", "sklearn"], runs=2)
    p.snakemake("--cores", "2")
    seen = [printed(p, f"r{x}") for x in range(2)]
    assert seen[0]["DRAW"] != seen[1]["DRAW"]
    assert {out["FORKED"] for out in seen} == {"True"}
