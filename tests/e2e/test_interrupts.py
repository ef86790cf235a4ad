"""Interrupting Snakemake stops its running notebooks, with all they started, and
leaves no kernel file (connection file, IPC socket, runtime dir) on any path.

Real snakemake, real kernels, notebooks that sleep a minute; each test has its own temp dir (so
its own warm server, runtime dirs and connection files) and runs with the warm runner on and off.
"""

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from conftest import SNAKEFILE, SNAKEMAKE, alive, descendants, servers, wait_for
from jupyter_core.utils import run_sync

from nbsweep.kernels import lifecycle, processes

NAP = 60  # seconds a notebook sleeps: far longer than any interrupt may take
LEFTOVER = ["sleep", "913"]  # what the notebooks leave running, detached


def ours(proc, tmpdir) -> bool:
    try:
        return proc.environ().get("TMPDIR") == str(tmpdir)
    except psutil.Error:
        return False


def leftovers(tmpdir) -> list:
    """Live ``sleep 913`` processes started by this test's notebooks (they inherit its TMPDIR)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["cmdline"] == LEFTOVER and proc.info["status"] != psutil.STATUS_ZOMBIE and ours(proc, tmpdir):
            found.append(proc)
    return found


def kernel_files(tmpdir, kernel_pids=None) -> list:
    """Runtime dirs and kernel connection files under the test's temp dir (those of ``kernel_pids``)."""
    found = [
        p
        for p in tmpdir.rglob("*")
        if p.name.startswith(lifecycle.RUNTIME_PREFIX) or (p.name.startswith("kernel-") and p.suffix == ".json")
    ]
    return found if kernel_pids is None else [p for p in found if kernel_of(p) in kernel_pids]


def left_behind(tmpdir) -> list[str]:
    """Everything under the test's temp dir but the warm runner's folder, its lock files and its
    socket (a server killed outright leaves that; the next one replaces it), and Snakemake's own
    source cache (``snakemake*``, left when it is killed): what a kernel start left (connection
    files, IPC sockets, runtime dirs, temp folders), whatever their names."""
    runner, snakemakes = tmpdir / f"nbsweep-{os.getuid()}", list(tmpdir.glob("snakemake*"))
    kept = lambda p: p == runner or (p.parent == runner and p.suffix in {".lock", ".sock"}) or any(s in [p, *p.parents] for s in snakemakes)  # noqa: E731
    return sorted(f"{p} ({oct(p.lstat().st_mode)})" for p in tmpdir.rglob("*") if not kept(p))


def describe(paths) -> list:
    """Paths, with their owner record and whether its processes live (for failure messages)."""
    shown = []
    for path in paths:
        try:
            owner = json.loads((path / lifecycle.OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = {}
        shown.append((str(path), owner, {k: alive(v) for k, v in owner.items() if k.endswith("pid")}))
    return shown


def kernel_of(path) -> int | None:
    """The kernel whose runtime dir holds ``path`` (spares of the warm runner have theirs too)."""
    folder = next(p for p in [path, *path.parents] if p.name.startswith(lifecycle.RUNTIME_PREFIX) or p.name.startswith("itmp"))
    try:
        return json.loads((folder / lifecycle.OWNER_FILE).read_text()).get("kernel_pid")
    except (OSError, ValueError):
        return None


def stop_servers(tmpdir) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "nbsweep.execution.warm_server" in cmdline and any(arg.startswith(str(tmpdir)) for arg in cmdline):
            proc.terminate()


@pytest.fixture(params=["warm", "forked", "in-process"])
def napping(request, project, monkeypatch, tmp_path_factory):
    """Two runs that record their kernel's pid, start ``sleep 913`` detached, then sleep a minute
    (``forked``: on kernels forked from a zygote, through ``preload``)."""
    tmpdir = tmp_path_factory.mktemp("itmp")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0" if request.param == "in-process" else "1")
    pids = project.root / "pids"
    pids.mkdir()
    code = [
        f"import os, time\nopen(os.path.join({str(pids)!r}, label), 'w').write(str(os.getpid()))",
        f"os.system('({' '.join(LEFTOVER)} &)')",
        "time.sleep(seconds)",
    ]
    project.notebook("nap", code, f"seconds = {NAP}\nlabel = ''")
    runs = [{"notebook": "notebooks/nap.ipynb", "label": x, "parameters": {"label": x}} for x in ("a", "b")]
    project.write_config({"defaults": {"preload": ["fractions"] if request.param == "forked" else []}, "runs": runs})
    project.tmpdir, project.pids = tmpdir, pids
    project.warm, project.forked = request.param != "in-process", request.param == "forked"
    yield project
    stop_servers(tmpdir)
    for proc in leftovers(tmpdir):
        proc.kill()


def start_and_wait_for_notebooks(project, stderr_path):
    """Start snakemake; once both notebooks are executing, their kernels' pids."""
    with open(stderr_path, "w") as stderr:
        cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "2"]
        sm = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.DEVNULL, stderr=stderr, env=project.env)

    def ready():
        return sm.poll() is not None or (len(list(project.pids.iterdir())) == 2 and len(leftovers(project.tmpdir)) == 2)

    assert wait_for(ready, 180) and sm.poll() is None, stderr_path.read_text()[-3000:]
    return sm, [int(p.read_text()) for p in project.pids.iterdir()]


def assert_nothing_left(project, kernel_pids):
    assert wait_for(lambda: not any(alive(pid) for pid in kernel_pids), 10), "a notebook's kernel outlived the interrupt"
    assert wait_for(lambda: not leftovers(project.tmpdir), 10), "a process started by a notebook outlived the interrupt"
    assert wait_for(lambda: not kernel_files(project.tmpdir, kernel_pids), 10), kernel_files(project.tmpdir)
    assert wait_for(lambda: not list(project.out.rglob("*.ipynb")), 10), "an interrupted run left a notebook"
    stop_servers(project.tmpdir)  # and the warm runner's spares, kernels started ahead, with it
    assert wait_for(lambda: not kernel_files(project.tmpdir), 20), describe(kernel_files(project.tmpdir))
    assert wait_for(lambda: not left_behind(project.tmpdir), 20), left_behind(project.tmpdir)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_snakemake_stops_its_notebooks_at_once(napping, sig, tmp_path):
    p = napping
    sm, kernel_pids = start_and_wait_for_notebooks(p, tmp_path / "stderr.txt")
    sm.send_signal(sig)
    sm.wait(timeout=30)  # the notebooks would take another minute
    assert sm.returncode != 0
    assert_nothing_left(p, kernel_pids)
    console = (tmp_path / "stderr.txt").read_text()
    assert console.count("nbsweep: interrupted: stopping 2 running notebooks; the next `snakemake` resumes") == 1, console
    assert "Traceback" not in console and "KeyboardInterrupt" not in console, console


def test_killed_snakemake_leaves_no_kernel_process_or_file(napping, tmp_path):
    p = napping
    sm, kernel_pids = start_and_wait_for_notebooks(p, tmp_path / "stderr.txt")
    sm.kill()
    sm.wait(timeout=30)
    assert_nothing_left(p, kernel_pids)


def test_a_killed_job_process_is_cleaned_up_by_the_next_run(napping, tmp_path):
    """SIGKILL of the job process itself: in-process, nothing of the owner runs any more, so the
    next kernel started under the same temp dir ends what it left; through the warm runner, the
    child sees the client's end of the socket close."""
    p = napping
    sm, kernel_pids = start_and_wait_for_notebooks(p, tmp_path / "stderr.txt")
    for proc in descendants(psutil.Process(sm.pid)):
        try:
            if "nbsweep.execution.job" in proc.cmdline():
                proc.kill()
        except psutil.Error:  # ended (or a zombie) meanwhile
            pass
    sm.wait(timeout=60)
    assert sm.returncode != 0
    p.notebook("nap", ["print('quick')"], "seconds = 0\nlabel = ''")
    p.snakemake()
    assert not [pid for pid in kernel_pids if alive(pid)]
    assert wait_for(lambda: not leftovers(p.tmpdir), 10)
    assert wait_for(lambda: not kernel_files(p.tmpdir, kernel_pids), 10), kernel_files(p.tmpdir)
    stop_servers(p.tmpdir)
    assert wait_for(lambda: not left_behind(p.tmpdir), 20), left_behind(p.tmpdir)


def owners_of(tmpdir, kernel_pids) -> list[int]:
    """The processes that started ``kernel_pids`` (their runtime dirs' ``owner.json`` says)."""
    owners = []
    for path in tmpdir.glob(f"{lifecycle.RUNTIME_PREFIX}*/{lifecycle.OWNER_FILE}"):
        owner = json.loads(path.read_text())
        if owner.get("kernel_pid") in kernel_pids:
            owners.append(owner["pid"])
    return owners


def zygotes(tmpdir) -> list:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) > 1 and cmdline[1].endswith("zygote.py") and ours(proc, tmpdir):
            found.append(proc)
    return found


@pytest.mark.parametrize("victim", ["server", "zygote", "owner"])
def test_kills_in_the_warm_runner_leave_no_kernel_file(napping, victim, tmp_path):
    """SIGKILL of the warm server (its spares stop their kernels), of the zygote (its kernels run on),
    or of the processes that own the running kernels (they end with their owner, whose runtime dirs
    the next kernel start clears), then Ctrl-C: no connection file, socket or runtime dir is left."""
    p = napping
    if not p.warm or (victim == "zygote" and not p.forked):
        pytest.skip("no such process in this mode")
    sm, kernel_pids = start_and_wait_for_notebooks(p, tmp_path / "stderr.txt")
    victims = {
        "server": lambda: [proc.pid for proc in servers(p.tmpdir) if proc.ppid() not in {q.pid for q in servers(p.tmpdir)}],
        "zygote": lambda: [proc.pid for proc in zygotes(p.tmpdir)],
        "owner": lambda: owners_of(p.tmpdir, kernel_pids),
    }[victim]()
    assert victims, f"no {victim} to kill"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    sm.send_signal(signal.SIGINT)
    sm.wait(timeout=60)
    assert wait_for(lambda: not any(alive(pid) for pid in kernel_pids), 20), "a notebook's kernel outlived the kill"
    if victim != "owner":  # their owners live on and stop them
        assert wait_for(lambda: not kernel_files(p.tmpdir, kernel_pids), 20), left_behind(p.tmpdir)
    p.notebook("nap", ["print('quick')"], "seconds = 0\nlabel = ''")
    p.snakemake()
    stop_servers(p.tmpdir)
    assert wait_for(lambda: not left_behind(p.tmpdir), 30), left_behind(p.tmpdir)


def test_clear_orphaned_removes_only_dirs_of_dead_owners(tmp_path):
    """Unit: a runtime dir whose owner is alive stays; one whose owner has died goes, with its session."""
    live = tmp_path / f"{lifecycle.RUNTIME_PREFIX}live"
    dead = tmp_path / f"{lifecycle.RUNTIME_PREFIX}dead"
    other = tmp_path / "nbsweep-0"  # the warm runner's folder: never touched
    for folder in (live, dead, other):
        folder.mkdir()
    (live / lifecycle.OWNER_FILE).write_text(f'{{"pid": {os.getpid()}, "started": {processes.started(os.getpid())}}}')
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands for a dead owner's kernel
    gone = subprocess.Popen(["true"])
    gone.wait()
    (dead / lifecycle.OWNER_FILE).write_text(
        f'{{"pid": {gone.pid}, "started": 1.0, "kernel_pid": {orphan.pid}, "kernel_started": {processes.started(orphan.pid)}}}'
    )
    assert lifecycle.clear_orphaned(str(tmp_path)) == [str(dead)]
    assert wait_for(lambda: not alive(orphan.pid), 10)  # killed (and reaped: it was our child)
    assert live.exists() and other.exists() and not dead.exists()


def test_a_runtime_dir_recorded_on_another_machine_is_left_alone(tmp_path):
    """Unit: a temp dir shared with another machine or pid namespace: its pids are not ours to check."""
    elsewhere = tmp_path / f"{lifecycle.RUNTIME_PREFIX}elsewhere"
    elsewhere.mkdir()
    (elsewhere / lifecycle.OWNER_FILE).write_text(json.dumps({"pid": 1 << 30, "started": 1.0, "where": "another-boot:1"}))
    assert lifecycle.clear_orphaned(str(tmp_path)) == []
    assert elsewhere.exists()


def test_a_kernel_keeps_everything_in_its_runtime_dir_and_drops_the_key_once_started(tmp_path, monkeypatch):
    """Connection file and IPC sockets in the kernel's private runtime dir; the connection file
    (the HMAC key) is gone once the kernel has answered; stopping removes the rest."""
    users_runtime_dir = tmp_path / "jupyter-runtime"
    users_runtime_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(users_runtime_dir))  # (restored after: ``start`` sets it in this process)
    monkeypatch.setattr(lifecycle.tempfile, "tempdir", None)  # read TMPDIR again
    kernel = lifecycle.start("python3")
    try:
        runtime = Path(kernel.runtime_dir)
        assert runtime.parent == tmp_path and runtime.stat().st_mode & 0o777 == 0o700
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([runtime.name, users_runtime_dir.name]), left_behind(tmp_path)
        assert list(users_runtime_dir.iterdir()) == []
        assert wait_for(lambda: not (runtime / lifecycle.CONNECTION_FILE).exists(), 60), left_behind(tmp_path)
        client = kernel.manager.client()  # the client has the connection info in memory
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=60)
        finally:
            client.stop_channels()
    finally:
        kernel.stop()
    assert left_behind(tmp_path) == [f"{users_runtime_dir} ({oct(users_runtime_dir.lstat().st_mode)})"]
    assert list(users_runtime_dir.iterdir()) == []


@pytest.mark.parametrize("warm", ["1", "0"], ids=["warm", "in-process"])
def test_an_interrupted_run_is_reported_as_interrupted_with_its_previous_notebook_kept(
    project, warm, monkeypatch, tmp_path_factory, tmp_path
):
    """Ctrl-C while three runs execute (two had a good notebook, one never finished) and after a
    fourth finished: the console, `nbsweep status`, summary.json, index.html and `snakemake -n`
    all say interrupted, the previous good notebooks are kept, and the counts agree."""
    tmpdir = tmp_path_factory.mktemp("itmp")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", warm)
    started = project.root / "started"
    started.mkdir()
    code = [f"import os, time\nif seconds:\n    open(os.path.join({str(started)!r}, label), 'w').close()\ntime.sleep(seconds)"]
    project.notebook("nap", code, "seconds = 0\nlabel = ''")
    runs = [{"notebook": "notebooks/nap.ipynb", "label": x, "parameters": {"seconds": 0, "label": x}} for x in ("q", "a", "b")]
    project.write_config({"runs": runs})
    project.snakemake()
    good = {label: project.record("nap", label)["execution"] for label in ("a", "b")}
    runs[0]["parameters"]["label"] = "q2"  # changed, still quick
    for run in runs[1:]:
        run["parameters"]["seconds"] = NAP
    runs.append({"notebook": "notebooks/nap.ipynb", "label": "n", "parameters": {"seconds": NAP, "label": "n"}})
    project.write_config({"runs": runs})

    console = tmp_path / "stderr.txt"
    with open(console, "w") as stderr:
        cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "3", "--logger-nbsweep-progress-every", "0"]
        sm = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.DEVNULL, stderr=stderr, env=project.env)
    try:
        ready = lambda: sm.poll() is not None or (len(list(started.iterdir())) == 3 and "run nap/q ok" in console.read_text())  # noqa: E731
        assert wait_for(ready, 180) and sm.poll() is None, console.read_text()[-3000:]
        sm.send_signal(signal.SIGINT)
        sm.wait(timeout=60)
    finally:
        stop_servers(tmpdir)
    lines = console.read_text().splitlines()
    assert sm.returncode != 0 and "Traceback" not in console.read_text()
    progress = [line for line in lines if line.startswith("nbsweep: interrupted after ")]
    assert len(progress) == 1 and progress[0].endswith(": 1 ok, 3 interrupted"), lines
    assert "nbsweep: 4 runs (1 ok, 3 interrupted); summary in papermill_outputs/index.html" in lines, lines
    assert not [line for line in lines if "failed" in line], lines

    kept = {label: project.out / "nap" / label / f"nap_{label}.previous.ipynb" for label in ("a", "b")}
    status = subprocess.run([*SNAKEMAKE[:1], "-m", "nbsweep", "status"], cwd=project.root, capture_output=True, text=True, env=project.env)
    for label in ("a", "b"):
        assert (
            f"nap/{label}  interrupted  interrupted (previous good notebook kept at {kept[label].relative_to(project.root)}); "
            f"changed since: parameters changed: seconds 0 → {NAP}"
        ) in status.stdout, status.stdout
        assert json.loads(kept[label].read_text())["metadata"]["nbsweep"]["execution"] == good[label]  # the notebook it had
    assert "nap/n  interrupted  interrupted before it ever finished (no earlier notebook)" in status.stdout, status.stdout
    assert "4 runs: 1 up to date, 3 interrupted" in status.stdout
    rows = {row["label"]: row for row in json.loads((project.out / "summary.json").read_text())}
    assert {label: row["status"] for label, row in rows.items()} == {"q": "ok", "a": "interrupted", "b": "interrupted", "n": "interrupted"}
    assert rows["a"]["previous"] == str(kept["a"].relative_to(project.root)) and rows["n"]["previous"] is None
    index = (project.out / "index.html").read_text()
    assert index.count('data-status="interrupted"') == 3 and "nap/a/nap_a.previous.ipynb" in index

    dry = project.snakemake("-n").stdout
    assert f"nap/a: interrupted last time; changed since: parameters changed: seconds 0 → {NAP}" in dry
    assert "nap/n: interrupted last time" in dry and "nap/q" not in dry

    for run in runs:
        run["parameters"]["seconds"] = 0
    project.write_config({"runs": runs})
    project.snakemake()
    # Only nap/q's first notebook (label 'q', replaced when q became q2) stays kept aside; the interrupted runs keep nothing.
    kept_aside = list(project.out.rglob("*.previous.ipynb"))
    assert [path.parent.name for path in kept_aside] == ["q"] and not list(project.out.rglob(".*.interrupted"))
    assert json.loads(kept_aside[0].read_text())["metadata"]["nbsweep"]["parameters"]["label"] == "q"
    assert "4 runs: 4 up to date" in project.nbsweep("status").stdout
    stop_servers(tmpdir)
