"""Warm runner: a per-user background server that has papermill imported and forks per run.

Every run's job is a fresh ``python -m nbsweep.execution.job``. Importing papermill, nbclient and
jupyter_client costs about as much CPU as executing a small notebook, and starting a kernel
takes longer still. So the first run of a sweep starts this server (and waits for it to listen);
every run passes its request and its stdout/stderr over a Unix socket, and the server hands it
to a forked child. The server keeps spares: children forked ahead that have already started a
kernel in the setting (kernel name, directory, environment) of the latest request, as many as
runs are executing (at most one per CPU) and never more than the runs its invocation has still
to come (``Remaining``: a spare serves its own invocation only, as the environment names it).
Unless the setting has ``preload: false``, the server keeps a zygote for it that has imported
ipykernel and its ``preload`` modules (by default the template's installed imports), and spares
(and a run that finds no spare) fork their kernel from it (``nbsweep.kernels.forking``;
else they import them in their kernel: ``nbsweep.kernels.preload``). While Snakemake still plans an
invocation that executes runs here, its main process has the server started and ready for them:
the zygote and spares of their setting (``get_ready``, ``nbsweep.smk.warm_start``). A run executes at once on a
spare's kernel and is reported done before that kernel shuts down. The client stays the process Snakemake waits on
and relays the exit status. If it dies (Snakemake killed), or is interrupted (SIGTERM, SIGINT:
it half-closes the connection and waits for the child), the child sees the end of the stream and
aborts the run (``execute.abort``). A spare stops its kernel when dismissed, when the server
goes, or on SIGTERM.

A run must see exactly what it would see in-process. The request carries the job's directory,
environment and process setting (umask, rlimits, nice value, CPU affinity: ``process_setting``),
and the child takes them on before it starts a kernel or executes anything; spares are keyed on
all of them. A spare's kernel is used only if a kernel started now would be made from the same
kernelspec and installs (``lifecycle.still_current``). The server is keyed (its socket name) on the
interpreter, nbsweep's code, the site directories' state (``site_state``: a ``.pth`` or package
installed after it started) and what a child cannot change towards (hard limits, nice value).

The server listens in a private directory (mode 0700) under the temp dir, opened once and used
through its descriptor (``private_dir``: a symlink or file planted there, or a folder others can
enter, turns the warm runner off with one line); both ends check that the other is the same user
(``SO_PEERCRED``). It exits after a minute without requests. It is not used inside SLURM jobs
(their processes die with the job) or when NBSWEEP_WARM_RUNNER=0. Linux only.

A run's secrets (``nbsweep.model.secrets``: values of environment variables) reach its kernel only. The
planner names every secret variable of the invocation in ``NBSWEEP_SECRET_VARIABLES``
(``export_secret_variables``); the server and the zygotes are started without those variables
(``without_secrets``; ``/proc/<pid>/environ`` shows a process's environment as it was exec'ed),
while each request still carries its job's whole environment to its kernel. A request whose
secret variables are in the server's own environment (it was started by an invocation that did
not keep them secret) retires the server once that request is served: the next run starts one
without them.

A kernel start leaves nothing behind (``nbsweep.kernels.lifecycle``); the server also clears the runtime
dirs of kernels whose owner was killed (a spare or child killed with the server's process tree)
as it starts and as it exits.
"""

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from nbsweep import layout
from nbsweep.execution.private_dir import NotPrivate, PrivateDir, default_path, open_private, peer_is_us
from nbsweep.kernels import process_setting, site_state
from nbsweep.messages import say
from nbsweep.provenance import kept_aside

STARTUP_SECONDS = 10  # how long a job waits for a server being started before running in-process
ABORT_SECONDS = 10  # how long an interrupted job waits for the child to stop its run
STREAMS = 2  # stdout and stderr are handed to the child
SECRET_VARIABLES = "NBSWEEP_SECRET_VARIABLES"  # JSON list of the invocation's secret variables, set by the planner


def enabled() -> bool:
    return os.environ.get("NBSWEEP_WARM_RUNNER", "1") != "0" and "SLURM_JOB_ID" not in os.environ and sys.platform == "linux"


def socket_name(setting: dict) -> str:
    """One server per user, interpreter, version of nbsweep's code, state of the installed packages,
    and hard limits and nice value (``process_setting.server_part``)."""
    package = Path(__file__).parents[1]
    stamp = [sys.executable, sys.version]
    stamp += [f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in sorted(package.rglob("*.py"))]
    stamp.append(json.dumps([site_state.signature(site_state.site_dirs()), process_setting.server_part(setting)], sort_keys=True))
    key = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    return f"runner-{key}.sock"


def export_secret_variables(runs) -> None:
    """Name the secret variables of ``runs`` (planned runs) for the processes the invocation starts."""
    os.environ[SECRET_VARIABLES] = json.dumps(sorted({variable for run in runs for variable in run.secrets.values()}))


def secret_variables(env: dict, job_file: str | None = None) -> set[str]:
    """The secret variables named in ``env`` (``SECRET_VARIABLES``) and by the run of ``job_file``."""
    names = set()
    try:
        names.update(json.loads(env.get(SECRET_VARIABLES) or "[]"))
    except (TypeError, ValueError):
        pass
    if job_file:
        try:
            names.update((json.loads(Path(job_file).read_text(encoding="utf-8")).get("secrets") or {}).values())
        except (OSError, ValueError, AttributeError, TypeError):
            pass
    return names


def without_secrets(env: dict, job_file: str | None = None) -> dict:
    """``env`` without the secret variables it names (``secret_variables``): for the server and the zygotes."""
    hidden = secret_variables(env, job_file)
    return {name: value for name, value in env.items() if name not in hidden}


def lock_name(name: str) -> str:
    return name.removesuffix(".sock") + ".lock"


def run_via_server(argv: list[str], parent: int) -> int | None:
    """Have the warm server execute the run (starting it if needed); None if it can't.
    ``parent``: the pid of the Snakemake process the job started under."""
    if not enabled():
        return None
    try:
        folder = open_private(default_path())
    except NotPrivate as err:
        say(f"nbsweep: warm runner off: {err}; running in-process")
        return None
    setting = process_setting.capture()
    with folder:
        name = socket_name(setting)
        conn = connect(folder, name)
        if conn is None:
            start_server(folder, name, job_file=argv[0])
            conn = connect(folder, name, wait=STARTUP_SECONDS)
    if conn is None:
        return None
    request = framed({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "setting": setting})
    try:
        socket.send_fds(conn, [request], [1, 2])
    except OSError:
        return None  # the server went as we connected: nobody has the request
    exit_with_parent(parent)
    interrupted = stop_on_signals(conn)
    try:
        reply = b"".join(iter(lambda: conn.recv(4096), b""))
    except ConnectionResetError:  # the server died with our request unread (a child that read it holds the connection)
        return None
    if interrupted and not reply:
        return 128 + interrupted[0]  # the child has stopped the run and closed its end
    if not reply:  # killed under the run: as an interrupted run, it shows its last good notebook
        files = layout.RunFiles(Path(argv[1]))
        files.partial.unlink(missing_ok=True)
        kept_aside.mark_interrupted(files)
        say(f"nbsweep: the warm runner stopped while executing {argv[1]}; run again")
        return 1
    answer = json.loads(reply)
    return None if "declined" in answer else answer["exit"]  # declined: it cannot take on our setting


def get_ready(job_file: str, parallel: int, env: dict):
    """Have the server get ready for the runs of this invocation while Snakemake still plans (called
    in its main process): send it the request a run of ``job_file`` would send with ``env``, the
    environment Snakemake gives that run's job, marked ``ahead``; the server then starts the
    setting's zygote, and spares for up to ``parallel`` runs. Returns what to hold open until the
    invocation ends (None if nothing was sent): the connection, or the pipe a server started here
    reads the request from before it imports anything (so the zygote's imports overlap its own).
    When it closes, the server drops what it made for the invocation, and exits if no run came."""
    if not enabled():
        return None
    try:
        folder = open_private(default_path())
    except NotPrivate:
        return None  # the first run says why
    setting = process_setting.capture()
    request = {"argv": [job_file], "cwd": os.getcwd(), "env": env, "setting": setting, "ahead": parallel}
    message = framed(request)
    with folder:
        name = socket_name(setting)
        held = connect(folder, name)
        if held is None and (held := start_server(folder, name, job_file=job_file, ahead=message)) is None:
            held = connect(folder, name, wait=STARTUP_SECONDS)  # another process is starting it
        if isinstance(held, socket.socket):
            try:
                held.sendall(message)
            except OSError:
                return None
    return held


def framed(request: dict) -> bytes:
    """A request as the server reads it: its length, then its JSON."""
    payload = json.dumps(request).encode()
    return len(payload).to_bytes(8, "big") + payload


def connect(folder: PrivateDir, name: str, wait: float = 0) -> socket.socket | None:
    """A connection to our server ``name`` in ``folder``; with ``wait``, keep trying that many
    seconds while a server is being started (its start lock is held)."""
    deadline = time.monotonic() + wait
    while True:
        busy = wait > 0 and starting(folder, name)  # checked first: a server releases the lock once listening
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(folder.entry(name))
        except OSError:
            conn.close()
        else:
            if peer_is_us(conn):
                return conn
            conn.close()  # not our process: never send it anything
            return None
        if not busy or time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def starting(folder: PrivateDir, name: str) -> bool:
    """Whether a server for ``name`` is starting (holds the start lock) right now."""
    lock = folder.open(lock_name(name))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(lock)
    return False


def stop_on_signals(conn: socket.socket) -> list[int]:
    """On SIGTERM, SIGINT or SIGHUP, have the child stop the run: half-close the connection (the
    child sees the end of the stream, kills its kernel and removes the partial notebook, then
    closes its end, which ends our wait). The signals received are appended to the list returned.
    If the child does not answer within ``ABORT_SECONDS``, exit all the same; never a traceback."""
    received: list[int] = []

    def stop(signum, frame):
        received.append(signum)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the child has gone already
        timer = threading.Timer(ABORT_SECONDS, os._exit, (128 + signum,))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    return received


def exit_with_parent(parent: int) -> None:
    """If Snakemake (pid ``parent``) dies, even by SIGKILL, exit: the closed socket stops the run."""

    def poll():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(130)

    threading.Thread(target=poll, daemon=True).start()


def start_server(folder: PrivateDir, name: str, job_file: str | None = None, ahead: bytes | None = None) -> int | None:
    """Start the server in the background unless another job is starting it right now.

    The server inherits the folder's descriptor (it never looks the folder up by name) and the
    start lock, which it holds until it listens; not the secret variables (those of the run of
    ``job_file`` too: ``without_secrets``). ``ahead``: a request (``get_ready``) the server reads
    from a pipe first thing; the pipe's end to keep open until the invocation ends is returned
    (None if no server was started).
    """
    lock = folder.open(lock_name(name))
    reader = writer = None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None
        if (conn := connect(folder, name)) is not None:  # started while we were looking
            conn.close()
            return None
        folder.unlink(name)  # a server that died leaves its socket file behind
        extra = []
        if ahead is not None:
            reader, writer = os.pipe()
            extra = [reader]
        subprocess.Popen(
            # the path is for process listings only; the server uses the descriptor
            [sys.executable, "-m", "nbsweep.execution.warm_server", str(folder.path / name), str(folder.fd), str(lock), *map(str, extra)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=[folder.fd, lock, *extra],
            cwd="/",
            env=without_secrets(dict(os.environ), job_file),
        )
        if writer is not None:
            os.close(reader)  # the server's now: if it dies, writing fails instead of blocking
            reader = None
            sent = 0
            while sent < len(ahead):  # read by the server as it starts
                sent += os.write(writer, ahead[sent:])
        return writer
    except OSError:
        if writer is not None:
            os.close(writer)
        return None
    finally:
        os.close(lock)
        if reader is not None:
            os.close(reader)


# --- server side ---
