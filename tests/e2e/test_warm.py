"""The warm runner: runs are forked from a server with papermill imported, on kernels started ahead."""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SNAKEFILE, SNAKEMAKE, alive, descendants, servers, stdout_of, stream_of, wait_for

from nbsweep.execution import warm_client, warm_server


def run_ids(project, how):
    logs = sorted(project.out.glob("w/*/*.log"))
    return {p.parent.name for p in logs if f"executes {how}" in p.read_text()}


def kernel_processes(tmpdir):
    """Kernels whose connection file lies under ``tmpdir`` (every runtime dir of the test does)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(tmpdir) in arg for arg in proc.info["cmdline"] or []) and "ipykernel" in " ".join(proc.info["cmdline"]):
            found.append(proc)
    return found


def stop_server(project):
    """SIGTERM this test's servers, by pid (they take their spares with them)."""
    for proc in servers(os.environ["TMPDIR"]):
        proc.terminate()


NO_PRELOAD = {"preload": False}  # kernels started on their own by spares (forks of a zygote: test_forking, test_preload)


@pytest.fixture
def warm_project(project, monkeypatch, tmp_path_factory):
    # A private temp dir: its own server, started and stopped by this test.
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("warmtmp")))
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    project.notebook("w", ["import os\nprint('ECHO', x)"], "x = 0")
    project.write_config(
        {"defaults": NO_PRELOAD, "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(6))}}]}
    )
    yield project
    stop_server(project)


def socket_path_for(project):
    env = {**os.environ, **project.env}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nbsweep.execution import private_dir, warm_client\nfrom nbsweep.kernels import process_setting\n"
            "print(private_dir.default_path() / warm_client.socket_name(process_setting.capture()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return None if out == "None" else Path(out)


def test_runs_use_the_warm_runner_and_kernels_started_ahead(warm_project):
    p = warm_project
    p.snakemake("--cores", "2")
    assert run_ids(p, "in the warm runner") == {f"r{x}" for x in range(6)}  # the first waits for it to start
    ahead = [log for log in p.out.glob("w/*/*.log") if "on a kernel started ahead" in log.read_text()]
    assert ahead, "no run used a kernel started ahead"
    for x in range(6):
        nb = json.loads(p.target("w", f"r{x}").read_text())
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
        assert stream_of(nb["cells"][-1]["outputs"]) == f"ECHO {x}\n"
    assert socket_path_for(p).exists()


def test_a_kernel_started_ahead_is_not_used_for_another_setting(warm_project, monkeypatch):
    """Spares start kernels with the latest request's environment; a run with another must not get one."""
    p = warm_project
    p.notebook("w", ["import os\nprint('ECHO', x, os.environ.get('NBSWEEP_TEST_FLAVOUR'))"], "x = 0")
    monkeypatch.setenv("NBSWEEP_TEST_FLAVOUR", "salt")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    monkeypatch.setenv("NBSWEEP_TEST_FLAVOUR", "pepper")
    p.snakemake("--cores", "1", "papermill_outputs/w/r1/w_r1.ipynb")
    outputs = [stream_of(json.loads(p.target("w", f"r{x}").read_text())["cells"][-1]["outputs"]) for x in (0, 1)]
    assert outputs == ["ECHO 0 salt\n", "ECHO 1 pepper\n"]  # r1's kernel, started ahead for its own invocation, is pepper's


def the_server(tmpdir):
    """The warm server of this test itself (not its forked children, which show the same command line)."""
    return [proc for proc in servers(tmpdir) if proc.ppid() not in {q.pid for q in servers(tmpdir)}]


def test_kernels_stop_gracefully_after_the_run_and_with_the_server(warm_project):
    p = warm_project
    flag, go, first = p.root / "said-goodbye", p.root / "go", p.root / "first"
    # atexit handlers run only when the kernel shuts down gracefully (not when it is killed). The
    # first run to execute waits for ``go``, so a spare for the second is waiting meanwhile.
    p.notebook(
        "w",
        [
            f"import atexit, os, time\natexit.register(lambda: open({str(flag)!r}, 'a').write('bye'))\n"
            f"{claim(first)}\n"
            f"while claimed and not os.path.exists({str(go)!r}):\n    time.sleep(0.05)"
        ],
        "x = 0",
    )
    two_runs(p)
    proc = p.popen("--cores", "1", "w")
    tmpdir = os.environ["TMPDIR"]
    try:
        up = lambda: first.exists() and first.read_text() and len(kernel_processes(tmpdir)) == 2  # noqa: E731
        assert wait_for(up, 240), "expected the first run's kernel and a spare's"
        running = int(first.read_text())
        for server in the_server(tmpdir):
            server.terminate()
        assert wait_for(lambda: [k.pid for k in kernel_processes(tmpdir)] == [running], 20), "a spare's kernel outlived the warm runner"
        go.touch()
        assert proc.wait(120) == 0
    finally:
        go.touch()
        proc.wait(120)
    assert wait_for(lambda: flag.exists() and flag.read_text() == "byebye", 20)  # both runs' kernels, the second on a new server
    stop_server(p)
    assert wait_for(lambda: not kernel_processes(tmpdir), 20), "kernels outlived the warm runner"


def test_no_spare_is_left_waiting_for_runs_that_will_not_come(warm_project):
    """A spare serves its own invocation only; the server starts none beyond the runs still to come."""
    p = warm_project
    p.snakemake("--cores", "2")
    assert run_ids(p, "in the warm runner") == {f"r{x}" for x in range(6)}
    assert any("on a kernel started ahead" in log.read_text() for log in p.out.glob("w/*/*.log"))
    tmpdir = os.environ["TMPDIR"]
    assert wait_for(lambda: not kernel_processes(tmpdir), 20), "a spare kernel was left waiting after the last run"
    assert servers(tmpdir), "the server should still be there, idle"


def test_the_warm_runner_gets_ready_while_snakemake_plans_and_only_when_runs_execute(warm_project):
    """The first run of an invocation finds a kernel started ahead (the server, started while
    Snakemake planned, readied it); a dry-run, or an invocation that executes nothing, starts none."""
    p = warm_project
    private = Path(os.environ["TMPDIR"], f"nbsweep-{os.getuid()}")
    p.snakemake("-n")
    assert not private.exists() and not servers(os.environ["TMPDIR"])
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    assert "on a kernel started ahead" in p.log("w", "r0")
    assert wait_for(lambda: not kernel_processes(os.environ["TMPDIR"]), 20), "a kernel started ahead outlived its invocation"
    stop_server(p)
    assert wait_for(lambda: not servers(os.environ["TMPDIR"]), 20)
    shutil.rmtree(private)
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")  # up to date
    assert not private.exists() and not servers(os.environ["TMPDIR"])


def test_a_server_started_ahead_of_runs_that_never_come_ends_with_their_invocation(warm_project):
    """Snakemake interrupted while it plans: what its main process holds for the server started
    ahead of the runs closes as it ends (here the process that had it started is killed), and the
    server, its zygote and the kernel it started ahead end too, as no run came."""
    p = warm_project
    job = p.root / "jobs" / "w" / "r0" / "job.json"  # as an invocation's job file is placed (layout.jobs_folder_of)
    job.parent.mkdir(parents=True)
    job.write_text(json.dumps({"kernel": "python3", "preload": ["json"]}))
    start = "import os, sys, time\nfrom nbsweep.execution import warm_client\nheld = warm_client.get_ready(sys.argv[1], 2, dict(os.environ))\ntime.sleep(300)"
    planner = subprocess.Popen([sys.executable, "-c", start, str(job)], cwd=p.root, env=p.env)

    def family():
        warm = servers(os.environ["TMPDIR"])
        return [*warm, *(child for server in warm for child in descendants(server))]

    def ready():
        import psutil

        names = []
        for proc in family():
            try:
                names.append(" ".join(proc.cmdline()))
            except psutil.Error:
                pass
        return sum("zygote.py" in name for name in names) >= 2  # the zygote and the kernel forked from it

    try:
        assert wait_for(ready, 120), "the server started ahead readied no kernel"
        started = family()
    finally:
        planner.kill()
        planner.wait()
    assert wait_for(lambda: not any(alive(proc.pid) for proc in started), 60), "the warm runner outlived its invocation"


def test_disabled_or_dead_server_means_in_process(warm_project, monkeypatch):
    p = warm_project
    path = socket_path_for(p)
    path.parent.mkdir(mode=0o700, exist_ok=True)  # no server has made the private folder yet
    path.write_text("not a socket")  # what a crashed server may leave behind
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    assert run_ids(p, "in-process") == {"r0"}
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER")
    p.snakemake("--cores", "1")
    assert run_ids(p, "in the warm runner")  # the stale file was replaced by a live server
    probe = socket.socket(socket.AF_UNIX)
    probe.connect(str(path))
    probe.close()


def test_failures_are_reported_the_same_way(warm_project):
    p = warm_project
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")  # starts the server
    deadline = time.monotonic() + 20
    while not socket_path_for(p).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    p.notebook("w", ["raise ValueError(f'bad {x}')"], "x = 0")
    proc = p.snakemake("--cores", "1", "papermill_outputs/w/r1/w_r1.ipynb", check=False)
    assert proc.returncode != 0
    assert "w/r1 FAILED in cell" in proc.stderr and "ValueError: bad 1" in proc.stderr
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}
    assert p.target("w", "r1").with_suffix(".failed.ipynb").exists()


# --- a run sees what it would see in-process ---


def last_stdout(project, label):
    return stream_of(json.loads(project.target("w", label).read_text())["cells"][-1]["outputs"])


def claim(marker: Path) -> str:
    """Cell code setting ``claimed``: true in the first run to execute (it writes its kernel's pid to ``marker``)."""
    return (
        "import os\n"
        f"try:\n    fd = os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"
        "    os.write(fd, str(os.getpid()).encode())\n    os.close(fd)\n    claimed = True\n"
        "except FileExistsError:\n    claimed = False"
    )


def first_run_waits_for_the_spare(marker: Path) -> str:
    """Cell code: the first run to execute waits until the spare for the next one has its kernel
    up (and its interpreter has read its site directories), then goes on with ``claimed`` true."""
    return (
        f"{claim(marker)}\n"
        "import time, psutil\n"
        "def kernels():\n"
        "    lines = [' '.join(q.info['cmdline'] or []) for q in psutil.process_iter(['cmdline'])]\n"
        "    return [line for line in lines if 'ipykernel' in line and os.environ['TMPDIR'] in line]\n"
        "deadline = time.monotonic() + 60\n"
        "while claimed and len(kernels()) < 2 and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
        "time.sleep(1 if claimed else 0)"
    )


def two_runs(project):
    """Runs r0 and r1 of template w, in one invocation (``snakemake w``): spares serve their own invocation only."""
    project.write_config({"defaults": NO_PRELOAD, "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": [0, 1]}}]})


def stdout_by_label(project, labels):
    return {label: stdout_of(project.target("w", label)) for label in labels}


def test_the_umask_of_the_invoking_shell_applies(warm_project):
    p = warm_project
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")  # the server starts with umask 022
    old = os.umask(0o077)
    try:
        p.snakemake("--cores", "1", "papermill_outputs/w/r1/w_r1.ipynb")
    finally:
        os.umask(old)
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}
    assert p.target("w", "r0").stat().st_mode & 0o777 == 0o644
    assert p.target("w", "r1").stat().st_mode & 0o777 == 0o600
    assert p.target("w", "r1").with_suffix(".log").stat().st_mode & 0o777 == 0o600


PROBE = (
    "import os, resource\n"
    "print('SEEN', oct(os.umask(0)), os.nice(0), resource.getrlimit(resource.RLIMIT_NOFILE)[0], sorted(os.sched_getaffinity(0)))"
)


def snakemake_with(project, preexec, *args):
    """``project.snakemake`` from a shell whose umask, rlimits, nice value or affinity ``preexec`` sets."""
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "1", *args]
    proc = subprocess.run(
        cmd, cwd=project.root, env=project.env, capture_output=True, text=True, timeout=300, preexec_fn=preexec, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_caller_reading_through_pipes_is_not_held_by_the_server_left_running(warm_project):
    """``snakemake ... | tee log`` ends with Snakemake: the warm server it leaves running holds none
    of its streams. (``Project.snakemake`` captures into files, which a leftover could not hold up.)"""
    p = warm_project
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(p.root), "--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb"]
    proc = subprocess.run(cmd, cwd=p.root, env=p.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert the_server(os.environ["TMPDIR"]), "no warm server was left running: this test tests nothing"
    assert "ECHO 0" in stdout_of(p.target("w", "r0"))


def test_rlimits_nice_and_cpu_affinity_of_the_invoking_shell_apply(warm_project):
    p = warm_project
    p.notebook("w", [PROBE], "x = 0")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    default_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    mask = os.umask(0o022)
    os.umask(mask)
    assert last_stdout(p, "r0") == f"SEEN {oct(mask)} {os.nice(0)} {default_nofile} {sorted(os.sched_getaffinity(0))}\n"

    def limited():
        os.umask(0o027)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    snakemake_with(p, limited, "papermill_outputs/w/r1/w_r1.ipynb")  # same server: its child takes these on
    assert last_stdout(p, "r1") == f"SEEN 0o27 {os.nice(0)} 256 {[min(os.sched_getaffinity(0))]}\n"
    snakemake_with(p, lambda: os.nice(3), "papermill_outputs/w/r2/w_r2.ipynb")  # a server of its own: it cannot lower it
    assert last_stdout(p, "r2") == f"SEEN {oct(mask)} {os.nice(0) + 3} {default_nofile} {sorted(os.sched_getaffinity(0))}\n"
    assert run_ids(p, "in the warm runner") == {"r0", "r1", "r2"}


def test_an_edited_kernelspec_is_seen_by_the_next_run(warm_project):
    """The first run edits the kernelspec after the spare for the next run has started its kernel."""
    p = warm_project
    p.add_kernel("k2")
    spec_file = p.root / "share" / "jupyter" / "kernels" / "k2" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec_file.write_text(json.dumps({**spec, "env": {"NBSWEEP_SPEC_FLAVOUR": "one"}}))
    edited = json.dumps({**spec, "env": {"NBSWEEP_SPEC_FLAVOUR": "two"}})
    cells = [
        "import os\nprint('SEEN', os.environ.get('NBSWEEP_SPEC_FLAVOUR'))",
        first_run_waits_for_the_spare(p.root / "first"),
        f"if claimed:\n    open({str(spec_file)!r}, 'w').write({edited!r})",
    ]
    p.notebook("w", cells, "x = 0", kernel="k2")
    two_runs(p)
    p.snakemake("--cores", "1", "w")
    seen = stdout_by_label(p, ["r0", "r1"])
    assert sorted(seen.values()) == ["SEEN one\n", "SEEN two\n"]
    second = next(label for label, out in seen.items() if out == "SEEN two\n")
    assert "on a new kernel" in p.target("w", second).with_suffix(".log").read_text()
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}


def venv_kernel(project, tmp_path) -> tuple[Path, Path]:
    """Kernelspec ``venvk``: a venv of this test's own, its ipykernel this checkout's (by a .pth file);
    its site-packages, and a folder with ``nbsweep_extra_module`` to install there with another .pth."""
    venv = tmp_path / "kernelenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next(venv.glob("lib/python*/site-packages"))
    ours = subprocess.run(
        [sys.executable, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True
    )
    (site_packages / "nbsweep_test_base.pth").write_text(ours.stdout)
    spec = project.root / "share" / "jupyter" / "kernels" / "venvk" / "kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": "venvk", "language": "python"}))
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "nbsweep_extra_module.py").write_text("")
    return site_packages, extra


def test_a_pth_file_installed_after_the_kernel_started_ahead_is_seen(warm_project, tmp_path):
    """A kernel of another interpreter (a venv whose site-packages this test owns) gets a .pth file."""
    p = warm_project
    site_packages, extra = venv_kernel(p, tmp_path)
    install = f"if claimed:\n    open({str(site_packages / 'nbsweep_test_extra.pth')!r}, 'w').write({str(extra) + chr(10)!r})"
    probe = "try:\n    import nbsweep_extra_module\n    print('FOUND')\nexcept ImportError:\n    print('MISSING')"
    p.notebook("w", [probe, first_run_waits_for_the_spare(p.root / "first"), install], "x = 0", kernel="venvk")
    two_runs(p)
    p.snakemake("--cores", "1", "w")
    seen = stdout_by_label(p, ["r0", "r1"])
    assert sorted(seen.values()) == ["FOUND\n", "MISSING\n"]  # the first run installs it after the spare started
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}


def test_the_server_is_keyed_on_the_site_directories_and_what_a_child_cannot_change(tmp_path, monkeypatch):
    from nbsweep.kernels import process_setting, site_state

    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(site_state, "site_dirs", lambda: [str(site)])
    setting = process_setting.capture()
    names = [warm_client.socket_name(setting)]
    (site / "extra.pth").write_text("/nowhere\n")
    names.append(warm_client.socket_name(setting))
    os.utime(site, ns=(0, 0))  # the folder unchanged to the eye; the .pth file edited in place
    (site / "extra.pth").write_text("/elsewhere/longer\n")
    names.append(warm_client.socket_name(setting))
    names.append(warm_client.socket_name({**setting, "nice": setting["nice"] + 1}))
    names.append(warm_client.socket_name({**setting, "umask": 0o077, "affinity": [0]}))  # a child sets these itself
    assert len(set(names[:4])) == 4 and names[4] == names[2]


def test_a_forked_child_takes_on_the_captured_setting():
    from nbsweep.kernels import process_setting

    setting = process_setting.capture()
    wanted = {**setting, "umask": 0o027, "nice": setting["nice"] + 2, "affinity": setting["affinity"][:1]}
    wanted["rlimits"] = {**setting["rlimits"], "RLIMIT_NOFILE": [200, setting["rlimits"]["RLIMIT_NOFILE"][1]]}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        process_setting.apply(wanted)
        os.write(write, json.dumps(process_setting.capture()).encode())
        os._exit(0)
    os.close(write)
    seen = json.loads(os.read(read, 1 << 16))
    os.waitpid(pid, 0)
    assert seen == wanted
    assert process_setting.capture() == setting  # the parent is untouched


def test_a_setting_the_child_cannot_take_on_is_declined_not_run(tmp_path):
    """The client then runs in-process (``run_via_server`` returns None for a declined request)."""
    from nbsweep.kernels import process_setting

    setting = {**process_setting.capture(), "affinity": [(os.cpu_count() or 1) + 64]}  # a CPU this machine lacks
    request = {"argv": ["no-job.json", "t.ipynb", "t.log"], "cwd": str(tmp_path), "env": dict(os.environ), "setting": setting}
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        os._exit(warm_server.serve_one(theirs, request, [], kernel=None))
    theirs.close()
    reply = json.loads(b"".join(iter(lambda: ours.recv(4096), b"")))
    _, status = os.waitpid(pid, 0)
    assert "declined" in reply and os.waitstatus_to_exitcode(status) == 0
    assert list(tmp_path.iterdir()) == []  # nothing was executed or written
