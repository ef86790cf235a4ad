"""``python -m MODULE ARGS`` for the tests, forked from a process that has already imported Snakemake.

The suite runs Snakemake and the ``nbsweep`` command several hundred times; most of each start is
importing Snakemake and discovering its plugins, the same work every time. A launcher per pytest
worker does that once and forks a child per command, which then runs the module as ``python -m``
would (``runpy``, ``sys.argv``, ``sys.path[0]``, its own working folder, environment and standard
streams) and exits the way a fresh interpreter does. A command whose environment changes how an
interpreter starts (``PYTHON*`` variables), or that would inherit another umask, rlimit, nice value
or CPU affinity than the launcher did, is run by a fresh interpreter instead.
"""

import atexit
import io
import json
import os
import re
import resource
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What a run of the Snakefile or of ``nbsweep`` imports (read from ``sys.modules`` after one).
PRELOADED = (
    "snakemake.cli",
    "snakemake.profiles",
    "snakemake.storage",
    "snakemake_logger_plugin_nbsweep",
    "nbsweep.cli",
    "nbsweep.cache.restore",
    "nbsweep.execution.warm_client",
    "nbsweep.results.tracking",
    "nbsweep.smk.hooks",
    "nbsweep.smk.launch",
    "jupyter_client",
    "requests",
    "ruamel.yaml",
    "smart_open",
)


# ---- the launcher (its own process) ----


def warm_up() -> None:
    """Import what every command imports, and discover Snakemake's plugins (read-only, the same for every command)."""
    for module in PRELOADED:
        __import__(module)
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
    from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry
    from snakemake_interface_report_plugins.registry import ReportPluginRegistry
    from snakemake_interface_scheduler_plugins.registry import SchedulerPluginRegistry
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    registries = (ExecutorPluginRegistry, LoggerPluginRegistry, ReportPluginRegistry, SchedulerPluginRegistry, StoragePluginRegistry)
    for registry in registries:
        registry()


def serve(path: str) -> socket.socket:
    """Accept commands forever; return only in a forked child, with its connection."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    waiting: dict[int, socket.socket] = {}
    parent = os.getppid()
    while os.getppid() == parent:  # a pytest worker killed outright leaves no launcher behind
        for key, _ in selector.select(timeout=1):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    selector.close()
                    listener.close()
                    os.close(wake_read)
                    os.close(wake_write)
                    return conn
                waiting[pid] = conn
            else:
                os.read(wake_read, 4096)
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    sys.exit(0)


def become(conn: socket.socket) -> str:
    """In the child: take the request's streams, folder, environment and arguments; return the module to run."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(message)
    for fd, target in zip(fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    conn.sendall(f"{os.getpid()}\n".encode())
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # read TMPDIR anew, as a fresh interpreter would
    sys.path[0] = os.getcwd()
    sys.argv = ["-m", *request["args"]]
    return request["module"]


def launcher_main(path: str) -> None:
    warm_up()
    conn = serve(path)
    module = become(conn)
    # the connection stays open (unused) until this process ends: the launcher reports the exit
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# ---- the tests' side ----


class Launcher:
    """One launcher process, started on first use."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.path = ""
        self.env: dict[str, str] = {}
        self.inherited: tuple = ()

    def start(self) -> None:
        folder = tempfile.mkdtemp(prefix="nbsweep-launcher-")
        self.path = os.path.join(folder, "socket")
        self.env = dict(os.environ)
        self.inherited = inherited()
        self.process = subprocess.Popen([sys.executable, __file__, self.path], stdin=subprocess.DEVNULL, env=self.env)
        atexit.register(self.stop, self.process, folder)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the preforked launcher did not start")
            time.sleep(0.02)

    @staticmethod
    def stop(process: subprocess.Popen, folder: str) -> None:
        process.kill()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)

    def can_run(self, env: dict[str, str]) -> bool:
        """Whether a command with ``env``, started from this process now, would start as the launcher did."""
        started = self.process is not None
        launcher_env, launcher_inherited = (self.env, self.inherited) if started else (os.environ, inherited())
        return starting_env(env) == starting_env(launcher_env) and inherited() == launcher_inherited

    def run(self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        """Like ``subprocess.run([python, -m, module, *args], capture_output=True, text=True)``."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(os.devnull, "rb") as null:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with conn:
                conn.connect(self.path)
                request = {"module": module, "args": args, "cwd": str(cwd), "env": env}
                socket.send_fds(conn, [json.dumps(request).encode()], [null.fileno(), out.fileno(), err.fileno()])
                conn.settimeout(timeout)
                reader = conn.makefile("r")
                pid = int(reader.readline())
                try:
                    code = int(reader.readline())
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired([module, *args], timeout) from None
            stdout, stderr = (as_text(stream) for stream in (out, err))
        return subprocess.CompletedProcess([sys.executable, "-m", module, *args], code, stdout, stderr)


def starting_env(env) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith("PYTHON")}


def inherited() -> tuple:
    """What a child process inherits from this one besides its environment: umask, rlimits, nice value, CPU affinity."""
    umask = re.search(r"^Umask:\s*(\d+)", Path("/proc/self/status").read_text(), re.M).group(1)
    limits = [resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")]
    return umask, limits, os.nice(0), os.sched_getaffinity(0)


def as_text(stream) -> str:
    """What ``subprocess.run(text=True)`` makes of captured bytes (universal newlines)."""
    stream.seek(0)
    return io.TextIOWrapper(stream, errors="strict").read()


LAUNCHER = Launcher()


def python_m(module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in ``cwd`` with ``env``, output captured as text."""
    if os.environ.get("NBSWEEP_TESTS_PREFORK", "1") == "0" or not LAUNCHER.can_run(env):
        cmd = [sys.executable, "-m", module, *args]
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return LAUNCHER.run(module, args, cwd, env, timeout)


if __name__ == "__main__":
    launcher_main(sys.argv[1])
