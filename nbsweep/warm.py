"""Warm runner: a per-user background server that has papermill imported and forks per run.

Every run's job is a fresh ``python -m nbsweep.run``. Importing papermill, nbclient and
jupyter_client costs about as much CPU as executing a small notebook, and starting a kernel
takes longer still. So the first run of a sweep starts this server (and waits for it to listen);
every run passes its request and its stdout/stderr over a Unix socket, and the server hands it
to a forked child. The server keeps spares: children forked ahead that have already started a
kernel in the setting (kernel name, directory, environment) of the latest request, as many as
runs are executing (at most one per CPU) and never more than the runs its invocation has still
to come (``Remaining``: a spare serves its own invocation only, as the environment names it).
Where the setting has ``preload`` modules, the server keeps a zygote for it that has imported
them, and spares (and a run that finds no spare) fork their kernel from it (``nbsweep.forking``;
else they import them in their kernel: ``nbsweep.preload``). The first job of an invocation that
executes anything starts the server while Snakemake is still planning (``start_early``). A run executes at once on a
spare's kernel and is reported done before that kernel shuts down. The client stays the process Snakemake waits on
and relays the exit status. If it dies (Snakemake killed), or is interrupted (SIGTERM, SIGINT:
it half-closes the connection and waits for the child), the child sees the end of the stream and
aborts the run (``execute.abort``). A spare stops its kernel when dismissed, when the server
goes, or on SIGTERM.

A run must see exactly what it would see in-process. The request carries the job's directory,
environment and process setting (umask, rlimits, nice value, CPU affinity: ``process_setting``),
and the child takes them on before it starts a kernel or executes anything; spares are keyed on
all of them. A spare's kernel is used only if a kernel started now would be made from the same
kernelspec and installs (``kernels.still_current``). The server is keyed (its socket name) on the
interpreter, nbsweep's code, the site directories' state (``site_state``: a ``.pth`` or package
installed after it started) and what a child cannot change towards (hard limits, nice value).

The server listens in a private directory (mode 0700) under the temp dir, opened once and used
through its descriptor (``private_dir``: a symlink or file planted there, or a folder others can
enter, turns the warm runner off with one line); both ends check that the other is the same user
(``SO_PEERCRED``). It exits after a minute without requests. It is not used inside SLURM jobs
(their processes die with the job) or when NBSWEEP_WARM_RUNNER=0. Linux only.

A run's secrets (``nbsweep.secrets``: values of environment variables) reach its kernel only. The
planner names every secret variable of the invocation in ``NBSWEEP_SECRET_VARIABLES``
(``export_secret_variables``); the server and the zygotes are started without those variables
(``without_secrets``; ``/proc/<pid>/environ`` shows a process's environment as it was exec'ed),
while each request still carries its job's whole environment to its kernel. A request whose
secret variables are in the server's own environment (it was started by an invocation that did
not keep them secret) retires the server once that request is served: the next run starts one
without them.

A kernel start leaves nothing behind (``nbsweep.kernels``); the server also clears the runtime
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
from dataclasses import dataclass
from pathlib import Path

from . import layout, process_setting, site_state
from .private_dir import NotPrivate, PrivateDir, check, default_path, open_private, peer_is_us

IDLE_SECONDS = 60
STARTUP_SECONDS = 10  # how long a job waits for a server being started before running in-process
ABORT_SECONDS = 10  # how long an interrupted job waits for the child to stop its run
STREAMS = 2  # stdout and stderr are handed to the child
MAX_SPARES = os.cpu_count() or 1  # kernels started ahead, at most one per CPU
MAX_ZYGOTES = 2  # settings whose zygote is kept (``forking``): the ones used last
SECRET_VARIABLES = "NBSWEEP_SECRET_VARIABLES"  # JSON list of the invocation's secret variables, set by the planner


def enabled() -> bool:
    return os.environ.get("NBSWEEP_WARM_RUNNER", "1") != "0" and "SLURM_JOB_ID" not in os.environ and sys.platform == "linux"


def socket_name(setting: dict) -> str:
    """One server per user, interpreter, version of nbsweep's code, state of the installed packages,
    and hard limits and nice value (``process_setting.server_part``)."""
    package = Path(__file__).parent
    stamp = [sys.executable, sys.version]
    stamp += [f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in sorted(package.glob("*.py"))]
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


def socket_path() -> Path | None:
    """Where the server for this process listens (for people and tests); None if the folder is not private."""
    try:
        with open_private(default_path()) as folder:
            return folder.path / socket_name(process_setting.capture())
    except NotPrivate:
        return None


# --- client side (the job process: keep imports minimal) ---


def run_via_server(argv: list[str], parent: int) -> int | None:
    """Have the warm server execute the run (starting it if needed); None if it can't.
    ``parent``: the pid of the Snakemake process the job started under."""
    if not enabled():
        return None
    try:
        folder = open_private(default_path())
    except NotPrivate as err:
        print(f"nbsweep: warm runner off: {err}; running in-process", file=sys.stderr)
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
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "setting": setting}).encode()
    try:
        socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [1, 2])
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
    if not reply:
        print(f"nbsweep: the warm runner stopped while executing {argv[0]}; run again", file=sys.stderr)
        return 1
    answer = json.loads(reply)
    return None if "declined" in answer else answer["exit"]  # declined: it cannot take on our setting


def start_early() -> None:
    """Start the server now, if it is not running, so its imports overlap Snakemake's planning (the
    first run then finds it listening); nothing if the warm runner is off or its folder not private."""
    if not enabled():
        return
    try:
        folder = open_private(default_path())
    except NotPrivate:
        return  # the first run says why
    with folder:
        name = socket_name(process_setting.capture())
        if (conn := connect(folder, name)) is not None:
            conn.close()
        else:
            start_server(folder, name)


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


def start_server(folder: PrivateDir, name: str, job_file: str | None = None) -> None:
    """Start the server in the background unless another job is starting it right now.

    The server inherits the folder's descriptor (it never looks the folder up by name) and the
    start lock, which it holds until it listens; not the secret variables (those of the run of
    ``job_file`` too: ``without_secrets``).
    """
    lock = folder.open(lock_name(name))
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        if (conn := connect(folder, name)) is not None:  # started while we were looking
            conn.close()
            return
        folder.unlink(name)  # a server that died leaves its socket file behind
        subprocess.Popen(
            # the path is for process listings only; the server uses the descriptor
            [sys.executable, "-m", "nbsweep.warm", str(folder.path / name), str(folder.fd), str(lock)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=[folder.fd, lock],
            cwd="/",
            env=without_secrets(dict(os.environ), job_file),
        )
    finally:
        os.close(lock)


# --- server side ---


@dataclass
class Spare:
    """A forked child waiting, kernel already started, for a request made in ``key``'s setting."""

    pid: int
    channel: socket.socket  # the server's end; closing it dismisses the spare
    key: tuple


def request_key(request: dict) -> tuple:
    """What a kernel started ahead must share with a run: kernel name, modules to preload, directory,
    environment and process setting (the kernelspec and installs are checked at hand-over:
    ``kernels.still_current``)."""
    job_file = Path(request["cwd"], request["argv"][0])
    try:
        job = json.loads(job_file.read_text(encoding="utf-8"))
        kernel, modules = job["kernel"], tuple(job.get("preload") or ())
    except (OSError, ValueError, KeyError, TypeError):
        kernel, modules = None, ()
    return (kernel, modules, request["cwd"], json.dumps(request["env"], sort_keys=True), json.dumps(request["setting"], sort_keys=True))


def serve(shown: Path, dir_fd: int, lock_fd: int) -> None:
    """Serve in the folder opened as ``dir_fd`` (``shown`` is its path, for messages) as ``shown.name``."""
    from . import execute, kernels

    check(dir_fd, shown.parent)
    os.set_inheritable(dir_fd, False)  # not for kernels
    folder, name = PrivateDir(shown.parent, dir_fd), shown.name
    own_variables = set(os.environ)  # as exec'ed: what /proc/<pid>/environ shows of this process and its forks

    execute.rehearse()  # the point of the server: imports done once, shared by every fork
    kernels.become_subreaper()  # a forked kernel whose zygote died re-parents here, not to init (it would exit)
    kernels.clear_orphaned()
    import jupyter_client.manager  # noqa: F401

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(folder.entry(name))
    listener.listen(128)
    listener.settimeout(1)
    os.close(lock_fd)  # listening: clients may connect; a new server may start once this one exits
    inode = folder.inode(name)
    spares: list[Spare] = []
    zygotes: dict = {}  # by setting (``forking.Zygote``): what its spares' kernels are forked from
    busy: set[int] = set()  # children executing a run
    ahead = Remaining()
    last_request = time.monotonic()
    retired = False  # its socket name taken away: it ends once its children have
    while busy or (not retired and time.monotonic() - last_request < IDLE_SECONDS):
        reap(busy, spares)
        if (conn := accept_ours(listener)) is None:
            continue
        last_request = time.monotonic()
        conn.settimeout(5)
        try:
            request, fds = receive(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        key = request_key(request)
        busy.add(hand_over(conn, request, fds, key, spares, listener, zygotes))
        conn.close()
        for fd in fds:
            os.close(fd)
        left = ahead.after(request)
        if own_variables & secret_variables(request["env"], str(Path(request["cwd"], request["argv"][0]))):
            retire(folder, name, inode)  # this process holds the run's secrets: the next run starts a server without them
            retired, left = True, 0
        replenish(spares, zygotes, key, request, wanted=min(len(busy), MAX_SPARES, left), most=left, listener=listener)
    for spare in spares:
        spare.channel.close()
    for zygote in zygotes.values():
        zygote.close()
    retire(folder, name, inode)
    kernels.clear_orphaned()


def retire(folder: PrivateDir, name: str, inode: int | None) -> None:
    """Take this server's socket name away (unless another server has it now): no new request comes."""
    if folder.inode(name) == inode:
        folder.unlink(name)


def accept_ours(listener: socket.socket) -> socket.socket | None:
    """The next connection, if it comes from a process of ours (None after the listener's timeout)."""
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return None
    if peer_is_us(conn):
        return conn
    conn.close()
    return None


def receive(conn: socket.socket, count: int = STREAMS) -> tuple[dict, list[int]]:
    """A request (argv, directory, environment) and the ``count`` descriptors sent with it."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 16, count)
    size = int.from_bytes(message[:8], "big")
    while len(message) < 8 + size:
        chunk = conn.recv(8 + size - len(message))
        if not chunk:
            raise ValueError("request cut short")
        message += chunk
    return json.loads(message[8:]), fds


def hand_over(conn: socket.socket, request: dict, fds: list[int], key: tuple, spares: list[Spare], listener, zygotes: dict) -> int:
    """Give the request to a spare made for the same setting, else to a new child; its pid."""
    payload = json.dumps(request).encode()
    for spare in [s for s in spares if s.key == key]:
        spares.remove(spare)
        try:
            socket.send_fds(spare.channel, [len(payload).to_bytes(8, "big") + payload], [conn.fileno(), *fds])
            return spare.pid
        except OSError:  # the spare died meanwhile: try the next, or a new child
            continue
        finally:
            spare.channel.close()
    zygote = zygote_for(zygotes, key, request)  # it imports once for this run and the spares
    return fork_seated(
        listener,
        spares,
        zygotes,
        key,
        zygote,
        lambda forked: serve_one(conn, request, fds, kernel=None, forked=(key, forked) if forked else None),
    )


class Remaining:
    """How many runs of an invocation are still to come, so no spare is started for none.

    An invocation writes one job file per run it executes before any runs (``layout.job_file``);
    they are counted at its first request, and every request served after it is one fewer to come.
    """

    def __init__(self):
        self.left: dict[Path, int] = {}

    def after(self, request: dict) -> int:
        """The runs of ``request``'s invocation still to come (a large number if it cannot tell)."""
        jobs = layout.jobs_folder_of(Path(request["cwd"], request["argv"][0]))
        if jobs is None:
            return MAX_SPARES
        if jobs not in self.left:
            try:
                self.left[jobs] = layout.count_job_files(jobs)
            except OSError:
                self.left[jobs] = MAX_SPARES
        self.left[jobs] = max(self.left[jobs] - 1, 0)
        return self.left[jobs]


def replenish(spares: list[Spare], zygotes: dict, key: tuple, request: dict, wanted: int, most: int, listener) -> None:
    """Dismiss spares made for another setting, and those beyond ``most`` (the runs
    still to come); start new ones for ``key`` up to ``wanted``, forked from the setting's zygote
    when it preloads modules."""
    for spare in [s for s in spares if s.key != key] + [s for s in spares if s.key == key][most:]:
        spares.remove(spare)
        spare.channel.close()
    if len(spares) >= wanted:
        return
    zygote = zygote_for(zygotes, key, request)
    while len(spares) < wanted:
        ours, theirs = socket.socketpair()
        pid = fork_seated(
            listener, spares, zygotes, key, zygote, lambda forked, theirs=theirs: wait_as_spare(theirs, key, forked), close=[ours]
        )
        theirs.close()
        spares.append(Spare(pid, ours, key))


def fork_seated(listener, spares: list[Spare], zygotes: dict, key: tuple, zygote, work, close: tuple = ()) -> int:
    """``fork`` a child that exits with ``work(forked)``, ``forked`` being its seat at ``zygote`` (``seat``);
    the zygotes' control channels are closed in the child, the seat's server end in the server."""
    forked = seat(zygotes, key, zygote)
    pid = fork(listener, spares, lambda: work(forked), close=[*close, *controls(zygotes)])
    if forked:
        forked[0].close()
    return pid


def seat(zygotes: dict, key: tuple, zygote) -> tuple | None:
    """For a spare to fork its kernel from ``zygote``: a connection to it and what it was made from
    (``kernels.start_ahead``); None without a zygote, or if it has gone (then it is dropped)."""
    from . import forking

    if zygote is None or zygotes.get(key) is not zygote:
        return None
    try:
        return zygote.connection(), zygote.made_from
    except forking.ForkFailed:
        zygotes.pop(key).close()
        return None


def zygote_for(zygotes: dict, key: tuple, request: dict):
    """The zygote for ``key``'s setting (started if there is none, or it is out of date); None if the
    setting preloads nothing or its kernel cannot be forked. The ``MAX_ZYGOTES`` settings used last
    keep theirs (two invocations at once); older ones are dismissed."""
    from . import forking

    kernel_name, modules = key[:2]
    if not kernel_name or not modules:
        return None
    if (zygote := zygotes.get(key)) is not None and not zygote.current():
        zygotes.pop(key).close()
        zygote = None
    env = without_secrets(request["env"], str(Path(request["cwd"], request["argv"][0])))  # its forks get the request's whole environment
    if zygote is None and (zygote := forking.Zygote.start(kernel_name, modules, request["cwd"], env, request["setting"])) is None:
        return None
    zygotes[key] = zygotes.pop(key, zygote)  # the most recently used last
    for older in list(zygotes)[:-MAX_ZYGOTES]:
        zygotes.pop(older).close()
    return zygote


def controls(zygotes: dict) -> list[socket.socket]:
    """The zygotes' control channels: no child of the server may hold them (a zygote exits when the server closes its own)."""
    return [zygote.control for zygote in zygotes.values()]


def fork(listener, spares: list[Spare], work, close: tuple = ()) -> int:
    """Fork a child that closes the server's sockets (and ``close``) and exits with ``work()``."""
    pid = os.fork()
    if pid:
        return pid
    for sock in [listener, *close, *(spare.channel for spare in spares)]:
        sock.close()
    code = 1
    try:
        code = work()
    finally:
        os._exit(code)


def reap(busy: set[int], spares: list[Spare]) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        busy.discard(pid)
        for spare in [s for s in spares if s.pid == pid]:  # died waiting (kernel failed to start)
            spares.remove(spare)
            spare.channel.close()


def wait_as_spare(channel: socket.socket, key: tuple, forked: tuple | None) -> int:
    """In a spare: start a kernel in ``key``'s setting (forked from a zygote: ``forked``, from
    ``seat``), then serve the request handed over."""
    from . import kernels

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # until a run is handed over (then: execute.handle_signals)
        signal.signal(sig, lambda signum, frame: (kernels.kill_all(), os._exit(0)))
    kernel_name, modules, cwd, env, setting = key
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(json.loads(env))
    try:
        process_setting.apply(json.loads(setting))
    except (OSError, ValueError):
        return 0  # not a setting this process can take on: the run goes to a new child, which declines
    output, kernel_output = os.pipe()
    kernel, warning = start_kernel_ahead(kernel_name, modules, kernel_output, forked) if kernel_name else (None, None)
    os.close(kernel_output)
    try:
        request, fds = receive(channel, STREAMS + 1)  # the client's connection, then its streams
    except (OSError, ValueError):  # dismissed, or the server has gone
        if kernel is not None:
            kernel.stop(now=True)
        return 0
    if kernel is not None and not kernels.still_current(kernel):  # kernelspec edited, or a new install
        kernel.stop(now=True)
        kernel = None
    conn = socket.socket(fileno=fds[0])
    relay = threading.Thread(target=copy_to_stderr, args=(output,), daemon=True)
    return serve_one(conn, request, fds[1:], kernel, on_streams=relay.start, warning=warning)


def start_kernel_ahead(name: str, modules: tuple[str, ...], output: int | None, forked: tuple | None = None):
    """A kernel ``name`` started ahead, with ``modules`` imported in it, and None: forked from a
    zygote (``forked``: see ``seat``), else started and then made to import them (``nbsweep.preload``);
    or, if they cannot be imported, a plain fresh kernel and the warning for the run. The kernel
    is None if it cannot start: the run then starts its own and reports why that fails."""
    from . import kernels, preload

    if forked is not None:
        try:
            kernel = kernels.start_ahead(name, output=output, forked=forked)
            kernel.preloaded = modules
            return kernel, None
        except Exception:  # noqa: BLE001 -- the zygote could not import them, or has gone: as without one
            pass
    try:
        kernel = kernels.start_ahead(name, output=output)
    except Exception:
        return None, None
    if not modules:
        return kernel, None
    why = preload.into(kernel, modules)
    if why is None:
        kernel.preloaded = modules
        return kernel, None
    kernel.stop(now=True)  # it may hold some of the modules: never hand it over
    try:
        kernel = kernels.start_ahead(name, output=output)
    except Exception:
        kernel = None
    return kernel, preload.failure_note(modules, why)


def copy_to_stderr(fd: int) -> None:
    """Relay the kernel's stdout/stderr (kept in a pipe until the run's stderr is known)."""
    try:
        while data := os.read(fd, 65536):
            os.write(2, data)
    except OSError:
        pass


def serve_one(conn: socket.socket, request: dict, fds: list[int], kernel, on_streams=None, warning: str | None = None, forked=None) -> int:
    """In a child: take over the client's directory, environment, process setting and streams; run;
    reply. A setting it cannot take on exactly is declined (the client then runs in-process).
    ``warning``: one line for the run's stderr and log (a preload that failed). ``forked``: the
    request's key and a seat at its zygote (``seat``), to fork the run's kernel from."""
    from .execute import run_job

    conn.settimeout(None)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    try:
        process_setting.apply(request["setting"])
    except (OSError, ValueError) as err:
        if kernel is not None:
            kernel.stop(now=True)
        conn.sendall(json.dumps({"declined": str(err)}).encode())
        return 0
    for fd, target in zip(fds, (1, 2), strict=False):
        os.dup2(fd, target)
        os.close(fd)
    if on_streams:
        on_streams()
    if forked is not None:
        (kernel_name, modules, *_), seated = forked
        kernel, warning = start_kernel_ahead(kernel_name, modules, None, seated)

    def reply(code: int) -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(json.dumps({"exit": code}).encode())
            conn.shutdown(socket.SHUT_WR)  # the client has its answer; the kernel now stops at leisure
        except OSError:
            pass  # the client went just now: the outcome is on disk all the same; the kernel still stops

    def client_gone() -> bool:
        """True once the client has closed its end: it died (Snakemake killed) or was interrupted."""
        try:
            return conn.recv(1) == b""
        except OSError:
            return True

    return run_job(request["argv"], gone=client_gone, how="in the warm runner", kernel=kernel, report=reply, warning=warning)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
