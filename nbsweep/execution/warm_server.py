"""The warm runner's server: spares, zygotes, and a forked child per run (see nbsweep.execution.warm_client)."""

import json
import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from nbsweep import layout
from nbsweep.execution.private_dir import PrivateDir, check, peer_is_us
from nbsweep.execution.warm_client import STREAMS, secret_variables, without_secrets
from nbsweep.kernels import process_setting

IDLE_SECONDS = 60


MAX_SPARES = os.cpu_count() or 1  # kernels started ahead, at most one per CPU


MAX_ZYGOTES = 2  # settings whose zygote is kept (``forking``): the ones used last


@dataclass
class Spare:
    """A forked child waiting, kernel already started, for a request made in ``key``'s setting."""

    pid: int
    channel: socket.socket  # the server's end; closing it dismisses the spare
    key: tuple


def request_key(request: dict) -> tuple:
    """What a kernel started ahead must share with a run: kernel name, modules to preload, directory,
    environment and process setting (the kernelspec and installs are checked at hand-over:
    ``lifecycle.still_current``). Where the modules are the template's imports, those the kernel
    finds installed (``installed_imports``), maybe none: its kernels are still forked from a zygote
    (that has imported ipykernel). None where nothing is preloaded (``preload: false``)."""
    job_file = Path(request["cwd"], request["argv"][0])
    try:
        job = json.loads(job_file.read_text(encoding="utf-8"))
        kernel, modules = job["kernel"], tuple(job.get("preload") or ()) or None
        if job.get("preload_imports"):
            modules = installed_imports(kernel, modules or (), request)
    except (OSError, ValueError, KeyError, TypeError):
        kernel, modules = None, None
    return (kernel, modules, request["cwd"], json.dumps(request["env"], sort_keys=True), json.dumps(request["setting"], sort_keys=True))


_installed: dict[tuple, tuple[str, ...]] = {}  # by kernel, imports, directory and environment; cleared when installs change


def installed_imports(kernel_name: str, modules: tuple[str, ...], request: dict) -> tuple[str, ...]:
    """Those of a template's imports that kernel ``kernel_name``'s interpreter finds installed in the
    request's directory and environment (``site_state.installed_modules``), looked up once per setting."""
    from nbsweep.kernels import kernelspec, site_state

    env = without_secrets(request["env"], str(Path(request["cwd"], request["argv"][0])))
    key = (kernel_name, modules, request["cwd"], json.dumps(env, sort_keys=True))
    if key not in _installed:
        try:
            spec = kernelspec.spec_of(kernel_name)
        except Exception:  # noqa: BLE001 -- no such kernel: the run's own start says why
            return ()
        python = kernelspec.interpreter(spec)
        _installed[key] = site_state.installed_modules(python, modules, request["cwd"], {**env, **spec["env"]}) if python else ()
    return _installed[key]


def serve(shown: Path, dir_fd: int, lock_fd: int, ahead_fd: int | None = None) -> None:
    """Serve in the folder opened as ``dir_fd`` (``shown`` is its path, for messages) as ``shown.name``.
    ``ahead_fd``: a pipe with the request of the process that started it ahead of the runs
    (``warm_client.get_ready``), its zygote started first thing; the pipe's end is the end of its invocation."""
    from nbsweep.execution import execute
    from nbsweep.kernels import lifecycle

    check(dir_fd, shown.parent)
    os.set_inheritable(dir_fd, False)  # not for kernels
    folder, name = PrivateDir(shown.parent, dir_fd), shown.name
    own_variables = set(os.environ)  # as exec'ed: what /proc/<pid>/environ shows of this process and its forks
    lifecycle.become_subreaper()  # a forked kernel whose zygote died re-parents here, not to init (it would exit)
    zygotes: dict = {}  # by setting (``forking.Zygote``): what its spares' kernels are forked from
    awaited: dict = {}  # invocations getting ready (``warm_client.get_ready``): the channel whose end is theirs -> their request and key
    if ahead_fd is not None:
        channel = os.fdopen(ahead_fd, "rb", buffering=0)
        os.set_inheritable(ahead_fd, False)
        if (request := read_ahead(channel)) is None:
            return  # its invocation has ended already
        awaited[channel] = (request, request_key(request))
        zygote_for(zygotes, awaited[channel][1], request)  # its imports overlap the server's own

    execute.rehearse()  # the point of the server: imports done once, shared by every fork
    lifecycle.clear_orphaned()
    import jupyter_client.manager  # noqa: F401

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(folder.entry(name))
    listener.listen(128)
    listener.settimeout(1)
    os.close(lock_fd)  # listening: clients may connect; a new server may start once this one exits
    inode = folder.inode(name)
    spares: list[Spare] = []
    busy: set[int] = set()  # children executing a run
    ahead = Remaining()
    for request, key in awaited.values():
        get_ready(request, key, spares, zygotes, listener, ahead)
    served = ahead_fd is None  # a server started ahead of runs that never come exits with their invocation
    last_request = time.monotonic()
    retired = False  # its socket name taken away: it ends once its children have
    while busy or awaited or (not retired and time.monotonic() - last_request < IDLE_SECONDS):
        reap(busy, spares)
        ready, _, _ = select.select([listener, *awaited], [], [], 1)
        for channel in [c for c in ready if c is not listener and ended(c)]:
            release(awaited.pop(channel)[1], spares, zygotes)
            channel.close()
        if not (served or busy or awaited or listener in ready):
            break
        if listener not in ready or (conn := accept_ours(listener)) is None:
            continue
        last_request = time.monotonic()
        conn.settimeout(5)
        try:
            request, fds = receive(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        for fd in fds if "ahead" in request else ():
            os.close(fd)
        if "ahead" in request and not own_variables & secret_variables(request["env"], str(Path(request["cwd"], request["argv"][0]))):
            awaited[conn] = (request, request_key(request))
            get_ready(request, awaited[conn][1], spares, zygotes, listener, ahead)
            continue
        if "ahead" in request:  # this process holds the invocation's secrets: its runs get a server without them
            conn.close()
            continue
        served = True
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
    lifecycle.clear_orphaned()


def read_ahead(channel) -> dict | None:
    """The request sent on ``channel`` as the server started (``warm_client.framed``); None if it ended first."""
    message = b""
    while len(message) < 8 or len(message) < 8 + int.from_bytes(message[:8], "big"):
        try:
            chunk = channel.read(1 << 16)
        except OSError:
            return None
        if not chunk:
            return None
        message += chunk
    try:
        return json.loads(message[8:])
    except ValueError:
        return None


def get_ready(request: dict, key: tuple, spares: list[Spare], zygotes: dict, listener, ahead: "Remaining") -> None:
    """For an invocation about to execute runs (a request ``ahead`` of them): its zygote, and spares
    for as many runs as it executes at once (``request["ahead"]``), at most the runs it has to come."""
    coming = ahead.coming(request)
    replenish(spares, zygotes, key, request, wanted=min(int(request["ahead"]), MAX_SPARES, coming), most=coming, listener=listener)


def ended(channel) -> bool:
    """Whether the process at the other end of ``channel`` (a pipe or a connection) has closed it."""
    try:
        return os.read(channel.fileno(), 4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def release(key: tuple, spares: list[Spare], zygotes: dict) -> None:
    """Dismiss the spares and the zygote of ``key``'s setting: its invocation has ended."""
    for spare in [s for s in spares if s.key == key]:
        spares.remove(spare)
        spare.channel.close()
    if (zygote := zygotes.pop(key, None)) is not None:
        zygote.close()


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
            self.left[jobs] = self.counted(jobs)
        self.left[jobs] = max(self.left[jobs] - 1, 0)
        return self.left[jobs]

    def coming(self, request: dict) -> int:
        """For a request ahead of an invocation's runs: its runs to come as far as known now (its job
        files may still be being written), at least one; the count is taken again at its first run."""
        jobs = layout.jobs_folder_of(Path(request["cwd"], request["argv"][0]))
        if jobs is None:
            return 1
        return max(self.left[jobs] if jobs in self.left else self.counted(jobs), 1)

    @staticmethod
    def counted(jobs: Path) -> int:
        try:
            return layout.count_job_files(jobs)
        except OSError:
            return MAX_SPARES


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
    (``lifecycle.start_ahead``); None without a zygote, or if it has gone (then it is dropped)."""
    from nbsweep.kernels import forking

    if zygote is None or zygotes.get(key) is not zygote:
        return None
    try:
        return zygote.connection(), zygote.made_from
    except forking.ForkFailed:
        zygotes.pop(key).close()
        return None


def zygote_for(zygotes: dict, key: tuple, request: dict):
    """The zygote for ``key``'s setting (started if there is none, or it is out of date); None if the
    setting preloads nothing (modules None: not even ipykernel) or its kernel cannot be forked. The ``MAX_ZYGOTES`` settings used last
    keep theirs (two invocations at once); older ones are dismissed."""
    from nbsweep.kernels import forking

    kernel_name, modules = key[:2]
    if not kernel_name or modules is None:
        return None
    if (zygote := zygotes.get(key)) is not None and not zygote.current():
        zygotes.pop(key).close()
        zygote = None
        _installed.clear()  # installs changed: the next requests look their imports up again
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
    from nbsweep.kernels import lifecycle

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # until a run is handed over (then: execute.handle_signals)
        signal.signal(sig, lambda signum, frame: (lifecycle.kill_all(), os._exit(0)))
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
    if kernel is not None and not lifecycle.still_current(kernel):  # kernelspec edited, or a new install
        kernel.stop(now=True)
        kernel = None
    conn = socket.socket(fileno=fds[0])
    relay = threading.Thread(target=copy_to_stderr, args=(output,), daemon=True)
    return serve_one(conn, request, fds[1:], kernel, on_streams=relay.start, warning=warning)


def start_kernel_ahead(name: str, modules: tuple[str, ...], output: int | None, forked: tuple | None = None):
    """A kernel ``name`` started ahead, with ``modules`` imported in it, and None: forked from a
    zygote (``forked``: see ``seat``), else started and then made to import them (``nbsweep.kernels.preload``);
    or, if they cannot be imported, a plain fresh kernel and the warning for the run. The kernel
    is None if it cannot start: the run then starts its own and reports why that fails."""
    from nbsweep.kernels import lifecycle, preload

    if forked is not None:
        try:
            kernel = lifecycle.start_ahead(name, output=output, forked=forked)
            kernel.preloaded = modules
            return kernel, None
        except Exception:  # noqa: BLE001 -- the zygote could not import them, or has gone: as without one
            pass
    try:
        kernel = lifecycle.start_ahead(name, output=output)
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
        kernel = lifecycle.start_ahead(name, output=output)
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
    from nbsweep.execution.execute import run_job

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
    serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:5]))
