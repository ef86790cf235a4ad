"""Warm runner: a per-user background server that has papermill imported and forks per run.

Every run's job is a fresh ``python -m nbsweep.run``. Importing papermill, nbclient and
jupyter_client costs about as much CPU as executing a small notebook, so the first run of a
sweep starts this server (and executes itself in-process); later runs pass their request and
their stdout/stderr over a Unix socket, and the server forks a child, already warm, to execute
it. The client stays the process Snakemake waits on and relays the exit status; if it dies
(Snakemake killed, Ctrl-C), the child sees the socket close and stops its kernel.

The server listens in a private directory (mode 0700) under the temp dir, on a socket whose name
changes with the interpreter and nbsweep's code; it exits after a minute without requests. It is
not used inside SLURM jobs (their processes die with the job) or when NBSWEEP_WARM_RUNNER=0.
"""

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

IDLE_SECONDS = 60
STREAMS = 2  # stdout and stderr are handed to the child


def enabled() -> bool:
    return os.environ.get("NBSWEEP_WARM_RUNNER", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def socket_path() -> Path | None:
    """One server per user, interpreter and version of nbsweep's code."""
    package = Path(__file__).parent
    stamp = [sys.executable, sys.version]
    stamp += [f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in sorted(package.glob("*.py"))]
    key = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"nbsweep-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        return None  # not our private folder: don't talk to whoever listens there
    return folder / f"runner-{key}.sock"


# --- client side (the job process: keep imports minimal) ---


def run_via_server(argv: list[str]) -> int | None:
    """Have the warm server execute the run; None if there is none (one is then started)."""
    path = socket_path() if enabled() else None
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        start_server(path)
        return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [1, 2])
    exit_with_parent()
    reply = b"".join(iter(lambda: conn.recv(4096), b""))
    if not reply:
        print(f"nbsweep: the warm runner stopped while executing {argv[0]}; run again", file=sys.stderr)
        return 1
    return json.loads(reply)["exit"]


def exit_with_parent() -> None:
    """If Snakemake dies (even by SIGKILL), exit: the closed socket stops the run."""
    parent = os.getppid()

    def poll():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(130)

    threading.Thread(target=poll, daemon=True).start()


def start_server(path: Path) -> None:
    """Start the server in the background unless another job is starting it right now."""
    with open(path.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        path.unlink(missing_ok=True)  # a server that died leaves its socket file behind
        subprocess.Popen(
            [sys.executable, "-m", "nbsweep.warm", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )


# --- server side ---


def serve(path: Path) -> None:
    from . import execute

    execute.skip_remote_io_backends()
    import papermill  # noqa: F401  (the point of the server: imported once, shared by forks)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(128)
    listener.settimeout(IDLE_SECONDS)
    inode = path.stat().st_ino
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            break
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os._exit(serve_one(conn))
        conn.close()
    if path.exists() and path.stat().st_ino == inode:
        path.unlink()


def serve_one(conn: socket.socket) -> int:
    """In a forked child: take over the client's streams, directory and environment; run."""
    from .execute import run_job

    conn.settimeout(None)
    message, fds, _, _ = socket.recv_fds(conn, 1 << 16, STREAMS)
    size = int.from_bytes(message[:8], "big")
    while len(message) < 8 + size:
        message += conn.recv(8 + size - len(message))
    for fd, target in zip(fds, (1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    request = json.loads(message[8:])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    code = run_job(request["argv"], gone=lambda: conn.recv(1) == b"", how="in the warm runner")
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(json.dumps({"exit": code}).encode())
    return code


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
