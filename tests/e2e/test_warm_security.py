"""The warm runner's private folder and peers: nothing planted in the temp dir is trusted;
secrets stay out of its long-lived processes."""

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import SNAKEFILE, SNAKEMAKE, stdout_of, wait_for

from nbsweep.execution import private_dir, warm_client, warm_server
from nbsweep.execution.private_dir import NotPrivate, open_private

FOLDER_NAME = f"nbsweep-{os.getuid()}"


@pytest.fixture
def tmpdir_project(project, monkeypatch, tmp_path_factory):
    """A one-run project whose jobs see a temp dir of this test's own."""
    tmpdir = tmp_path_factory.mktemp("planted")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    project.notebook("w", ["print('ECHO', x)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/w.ipynb", "label": "r0", "parameters": {"x": 1}}]})
    project.tmpdir = tmpdir
    return project


def plant_symlink(folder, elsewhere):
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)


def plant_file(folder, elsewhere):
    folder.write_text("planted")


def plant_open_folder(folder, elsewhere):
    folder.mkdir()
    folder.chmod(0o755)


@pytest.mark.parametrize("plant", [plant_symlink, plant_file, plant_open_folder], ids=["symlink", "file", "mode-0755"])
def test_a_planted_folder_means_in_process_with_one_line(tmpdir_project, tmp_path, plant):
    p = tmpdir_project
    folder, elsewhere = p.tmpdir / FOLDER_NAME, tmp_path / "victims-own-folder"
    plant(folder, elsewhere)
    proc = p.snakemake("--cores", "1")
    line = f"nbsweep: warm runner off: {folder} is not a private directory owned by you; running in-process"
    assert proc.stderr.count(line) == 1
    assert "Traceback" not in proc.stderr and "FileExistsError" not in proc.stderr
    assert "executes in-process" in p.target("w", "r0").with_suffix(".log").read_text()
    assert "ECHO 1" in p.target("w", "r0").read_text()
    if elsewhere.exists():
        assert list(elsewhere.iterdir()) == [], "nothing may be written where the symlink points"


def test_the_folder_is_made_private_and_opened_once(tmp_path):
    path = tmp_path / "nbsweep-x"
    with open_private(path) as folder:
        assert path.stat().st_mode & 0o777 == 0o700
        # Swap the folder for a symlink after opening: the socket still lands in the folder opened.
        path.rename(tmp_path / "moved")
        (tmp_path / "decoy").mkdir(mode=0o700)
        path.symlink_to(tmp_path / "decoy")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(folder.entry("s.sock"))
        listener.close()
    assert (tmp_path / "moved" / "s.sock").exists()
    assert list((tmp_path / "decoy").iterdir()) == []
    with pytest.raises(NotPrivate, match="is not a private directory owned by you"):
        open_private(path)  # now a symlink


def test_a_server_of_ours_is_accepted_and_a_foreign_peer_is_refused(tmp_path, monkeypatch):
    with open_private(tmp_path / "nbsweep-x") as folder:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(folder.entry("s.sock"))
        listener.listen(4)
        listener.settimeout(5)

        conn = warm_client.connect(folder, "s.sock")
        assert conn is not None and private_dir.peer_uid(conn) == os.getuid()
        served = warm_server.accept_ours(listener)
        assert served is not None
        conn.sendall(b"hello")
        assert served.recv(5) == b"hello"
        conn.close()
        served.close()

        monkeypatch.setattr(private_dir, "is_our_uid", lambda uid: False)  # as if another user were at the other end
        assert warm_client.connect(folder, "s.sock") is None  # the client sends nothing to it
        assert warm_server.accept_ours(listener) is None  # (that connection, closed by the client)
        client = socket.socket(socket.AF_UNIX)
        client.connect(folder.entry("s.sock"))
        assert warm_server.accept_ours(listener) is None  # the server drops it unread
        client.settimeout(5)
        assert client.recv(1) == b""
        client.close()
        listener.close()


def test_the_server_gets_the_opened_folder_not_its_name(tmp_path, monkeypatch):
    """The server is started with the folder's descriptor; its argv path is only for listings."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    code = (
        "from nbsweep.execution import private_dir, warm_client\nfrom nbsweep.kernels import process_setting\n"
        "with private_dir.open_private(private_dir.default_path()) as folder:\n"
        "    name = warm_client.socket_name(process_setting.capture())\n"
        "    warm_client.start_server(folder, name)\n"
        "    conn = warm_client.connect(folder, name, wait=warm_client.STARTUP_SECONDS)\n"
        "    print(conn is not None)\n"
    )
    moved = tmp_path / "elsewhere"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == "True"
        (tmp_path / FOLDER_NAME).rename(moved)  # the server keeps listening in the folder it was given
        assert [p.suffix for p in moved.iterdir() if p.suffix == ".sock"] == [".sock"]
    finally:
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "nbsweep.execution.warm_server" in cmdline and any(arg.startswith(str(tmp_path)) for arg in cmdline):
                proc.terminate()


SECRET = "tok-5d2a9c-only-for-the-kernel"


def warm_processes(tmpdir) -> dict:
    """The warm servers (and their forks) and zygotes of this test (their argv or environment names its temp dir)."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        try:
            if "nbsweep.execution.warm_server" in cmdline and any(arg.startswith(str(tmpdir)) for arg in cmdline):
                found[proc.pid] = "server"
            elif len(cmdline) > 1 and cmdline[1].endswith("zygote.py") and proc.environ().get("TMPDIR") == str(tmpdir):
                found[proc.pid] = "zygote"
        except psutil.Error:
            pass
    return found


def holding(tmpdir, value: str) -> list:
    """This test's servers and zygotes whose environment as exec'ed (``/proc/<pid>/environ``) holds ``value``."""
    held = []
    for pid, what in warm_processes(tmpdir).items():
        try:
            if value.encode() in open(f"/proc/{pid}/environ", "rb").read():  # noqa: PTH123
                held.append((what, pid))
        except OSError:  # ended meanwhile
            pass
    return held


def test_a_secret_reaches_the_kernel_and_not_the_warm_server_or_zygote(tmpdir_project):
    """The server and the zygote are exec'ed without the invocation's secret variables; a server
    started when the variable was no secret retires once a run keeps it secret."""
    p = tmpdir_project
    p.notebook("w", ["import os\nprint('REVERSED', token[::-1], os.environ['API_TOKEN'][::-1])"], 'token = ""\nx = 0')
    runs = [{"notebook": "notebooks/w.ipynb", "label": f"r{x}", "parameters": {"x": x}} for x in range(3)]
    env = {**p.env, "API_TOKEN": SECRET}
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(p.root), "--cores", "2"]

    p.notebook("plain", ["print('PLAIN', x)"], "x = 0")  # first without secrets: the variable is just set
    p.write_config({"defaults": {"preload": ["fractions"]}, "runs": [{"notebook": "notebooks/plain.ipynb", "label": "r0"}]})
    first = subprocess.run(cmd, cwd=p.root, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert holding(p.tmpdir, SECRET), "expected the server started with the variable set (not a secret yet)"

    p.write_config({"defaults": {"preload": ["fractions"], "secrets": {"token": "API_TOKEN"}}, "runs": runs})
    proc = subprocess.run(cmd, cwd=p.root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for x in range(3):
        assert f"REVERSED {SECRET[::-1]} {SECRET[::-1]}" in stdout_of(p.target("w", f"r{x}"))
    logs = [p.target("w", f"r{x}").with_suffix(".log").read_text() for x in range(3)]
    assert any("forked from a zygote" in log for log in logs), logs
    assert {what for what in warm_processes(p.tmpdir).values()} >= {"server", "zygote"}
    assert wait_for(lambda: not holding(p.tmpdir, SECRET), 30), holding(p.tmpdir, SECRET)


def test_secret_variables_are_named_by_the_planner_and_the_job(tmp_path):
    """Unit: the names come from ``NBSWEEP_SECRET_VARIABLES`` and the run's job file; only those are left out."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"secrets": {"token": "JOB_TOKEN"}}))
    env = {warm_client.SECRET_VARIABLES: json.dumps(["API_TOKEN"]), "API_TOKEN": "a", "JOB_TOKEN": "b", "PATH": "/bin"}
    assert warm_client.secret_variables(env, str(job)) == {"API_TOKEN", "JOB_TOKEN"}
    assert warm_client.without_secrets(env, str(job)) == {warm_client.SECRET_VARIABLES: '["API_TOKEN"]', "PATH": "/bin"}
    assert warm_client.without_secrets({**env, warm_client.SECRET_VARIABLES: "not json"}) == {
        **env,
        warm_client.SECRET_VARIABLES: "not json",
    }
