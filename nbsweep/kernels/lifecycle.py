"""Jupyter kernels for runs: started on IPC sockets in a private runtime dir, stopped by us.

IPC transport means no TCP ports, so kernels started at the same moment cannot race for them
(papermill#511). nbsweep starts the kernel itself and hands it to papermill (``km=``), so it can
be started before the run is requested (the warm runner's spares) and shut down after the
notebook is already in place.

A kernel started ahead records what it was made from (``start_ahead``): its kernelspec and the
state of its interpreter's site directories. ``still_current`` tells whether a kernel started now
would be made from the same, so an edited ``kernel.json`` or a new install is never missed.

A run's processes end with it, however it ends. jupyter_client starts every kernel as the leader
of a new session, and whatever the notebook starts stays in that session, detached or not
(``os.system("(sleep 913 &)")`` re-parents the ``sleep`` to an ancestor but keeps its session).
The process that owns the kernel also makes itself a child subreaper (Linux ``prctl``), so even a
daemon that leaves the session (``setsid``) re-parents to it rather than to init; a kernel forked
from a zygote (``start(zygote=...)``, ``nbsweep.kernels.forking``) is not its owner's child, so it is a
subreaper itself and such daemons stay its descendants. Stopping a
kernel, gracefully or not (``Kernel.stop``, and ``kill_all`` on the abort path, where no event
loop can be used), kills the kernel's session, its descendants and this process's other descendants, and removes
the runtime dir.

Everything a kernel start puts on disk is in its runtime dir (mode 0700, ``$TMPDIR/nbsweep-kernel-*``):
the IPC socket files and the connection file (with the kernel's HMAC key; jupyter_client's own
default would be a ``tmp*.json`` in the temp dir itself). The connection file is removed as soon
as the kernel has read it for the last time (``forget_connection_file``), so even a runtime dir
left behind holds no key. When the owner itself was killed outright (SIGKILL), nothing of it runs
any more: each runtime dir records its owner and kernel (``owner.json``, with the machine and pid
namespace they live in), and the next kernel started under the same temp dir, and the warm server
as it starts and exits, end what a dead owner left and remove its dir (``clear_orphaned``); a dir
whose owner lives, or lives where its pid cannot be checked from here, is left alone.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nbsweep.adapters import jupyter_internals
from nbsweep.files import write_atomically
from nbsweep.kernels.kernelspec import described, made_from_current, made_from_now, spec_of
from nbsweep.kernels.processes import descendants, kill, session, started, tree, where

RUNTIME_PREFIX = "nbsweep-kernel-"  # distinct from the warm runner's nbsweep-<uid> folder
OWNER_FILE = "owner.json"
CONNECTION_FILE = "kernel.json"
READY_SECONDS = 300  # how long the connection file is kept for a kernel that has not answered yet
UNOWNED_GRACE_SECONDS = 60  # a runtime dir without owner.json this old was left by a crash while being made
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_owned: dict[str, "Kernel | None"] = {}  # runtime dirs made by this process -> their kernel, once started


def become_subreaper() -> None:
    """Have orphaned descendants re-parent to this process instead of init (Linux; else a no-op)."""
    if sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kernel_config(runtime_dir: str):
    """traitlets config putting the kernel's sockets on IPC files and its connection file in ``runtime_dir``."""
    from traitlets.config import Config

    return Config(
        {
            "KernelManager": {
                "transport": "ipc",
                "ip": os.path.join(runtime_dir, "kernel"),
                "connection_file": os.path.join(runtime_dir, CONNECTION_FILE),
            }
        }
    )


def forget_connection_file(manager) -> None:
    """Remove the kernel's connection file once the kernel has answered a request (in a thread).

    ipykernel (7.x checked) reads the file while it initialises (``init_connection_file``, then
    ``write_connection_file``, which rereads it to merge) and never after; it answers requests
    only once initialised. The client keeps the connection info in memory (``get_connection_info``).
    """
    info, path = manager.get_connection_info(), manager.connection_file
    threading.Thread(target=_remove_when_answered, args=(info, path), daemon=True, name="nbsweep-connection-file").start()


def _remove_when_answered(info: dict, path: str) -> None:
    import zmq
    from jupyter_client.session import Session

    session = Session(key=info["key"], signature_scheme=info["signature_scheme"])
    context = zmq.Context()
    shell = context.socket(zmq.DEALER)
    shell.linger = 0
    try:
        shell.connect(jupyter_internals.channel_url(info, "shell"))
        session.send(shell, "kernel_info_request", {})
        if shell.poll(READY_SECONDS * 1000):
            Path(path).unlink(missing_ok=True)
    except (OSError, zmq.ZMQError):
        pass  # the runtime dir has gone with the kernel
    finally:
        shell.close()
        context.term()


@dataclass
class Kernel:
    name: str
    manager: object  # jupyter_client AsyncKernelManager, as nbclient uses
    runtime_dir: str
    pid: int | None = None  # the kernel process, leader of its own session
    made_from: tuple | None = None  # kernels started ahead: kernelspec, site dirs and their signature
    preloaded: tuple[str, ...] = ()  # modules imported in it before the run (``nbsweep.kernels.preload``)
    forked: bool = False  # forked from a zygote (``nbsweep.kernels.forking``), not started on its own

    def stop(self, now: bool = False) -> None:
        """Shut the kernel down (``now``: kill it), end what it left running, remove its runtime dir."""
        from jupyter_core.utils import run_sync

        left = tree(self.pid)  # before it ends: a forked kernel's daemons re-parent away from it then
        for client in getattr(self.manager, "clients", ()):
            client.stop_channels()  # nbclient leaves a client of a kernel it was given running
        try:
            if run_sync(self.manager.is_alive)():
                run_sync(self.manager.shutdown_kernel)(now=now)
            run_sync(self.manager.cleanup_resources)()
        finally:
            others = [kernel.pid for kernel in _owned.values() if kernel is not None and kernel is not self and kernel.pid]
            kill(left + session(self.pid) + tree(self.pid) + descendants(spare=others))
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            _owned.pop(self.runtime_dir, None)


def start(name: str, output: int | None = None, zygote: socket.socket | None = None) -> Kernel:
    """Start kernel ``name`` in this process's directory and environment.

    ``output``: a file descriptor for the kernel's stdout and stderr (default: this process's).
    ``zygote``: a connection to a zygote to fork the kernel from (``nbsweep.kernels.forking``; raises
    ``forking.ForkFailed`` if it gives none).
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    become_subreaper()
    clear_orphaned()
    runtime_dir = tempfile.mkdtemp(prefix=RUNTIME_PREFIX)
    _owned[runtime_dir] = None
    record_owner(runtime_dir)
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime_dir
    manager = tracking_clients(AsyncKernelManager)(kernel_name=name, config=kernel_config(runtime_dir))
    if zygote is not None:
        from nbsweep.kernels import forking

        jupyter_internals.preset_provisioner(manager, forking.ForkProvisioner).channel = zygote
    streams = {} if output is None else {"stdout": output, "stderr": output}
    try:
        run_sync(manager.start_kernel)(**streams)
    except BaseException:
        kill(descendants())
        shutil.rmtree(runtime_dir, ignore_errors=True)
        _owned.pop(runtime_dir, None)
        raise
    kernel = Kernel(name, manager, runtime_dir, pid=jupyter_internals.kernel_pid(manager), forked=zygote is not None)
    _owned[runtime_dir] = kernel
    record_owner(runtime_dir, kernel.pid)
    forget_connection_file(manager)
    return kernel


@cache
def tracking_clients(manager_class):
    """``manager_class`` whose managers remember the clients they make (``clients``), so that
    ``Kernel.stop`` can stop them: nbclient stops its client only for a kernel it started itself,
    and a client dropped with its channels running is logged as a warning when collected."""

    class TrackingClients(manager_class):
        def client(self, **kwargs):
            made = super().client(**kwargs)
            self.__dict__.setdefault("clients", []).append(made)
            return made

    return TrackingClients


def kill_all() -> None:
    """Kill every kernel this process started, with all it left, and remove their runtime dirs.

    For the abort path (a signal, or the requester gone): no event loop, no graceful shutdown.
    """
    kill([p for kernel in _owned.values() if kernel is not None for p in session(kernel.pid) + tree(kernel.pid)] + descendants())
    for runtime_dir in list(_owned):
        shutil.rmtree(runtime_dir, ignore_errors=True)
        _owned.pop(runtime_dir, None)


def record_owner(runtime_dir: str, kernel_pid: int | None = None) -> None:
    """Write who owns ``runtime_dir`` (this process, on this machine) and its kernel, for ``clear_orphaned``."""
    owner = {"pid": os.getpid(), "started": started(os.getpid()), "where": where()}
    if kernel_pid:
        owner.update(kernel_pid=kernel_pid, kernel_started=started(kernel_pid))
    write_atomically(Path(runtime_dir, OWNER_FILE), json.dumps(owner))


def clear_orphaned(temp_dir: str | None = None) -> list[str]:
    """End the kernels of runtime dirs whose owner has died (their session: what they left running)
    and remove those dirs; the dirs removed."""
    temp_dir = temp_dir or tempfile.gettempdir()
    here = where()
    cleared = []
    try:
        entries = [e for e in os.scandir(temp_dir) if e.name.startswith(RUNTIME_PREFIX)]
    except OSError:
        return cleared
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or info.st_uid != os.getuid():
            continue
        try:
            owner = json.loads(Path(entry.path, OWNER_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            if time.time() - info.st_mtime < UNOWNED_GRACE_SECONDS:
                continue  # being made right now
            owner = {}
        except (OSError, ValueError):
            continue
        if owner.get("where", here) != here:
            continue  # recorded on another machine or in another pid namespace: its owner may live
        if owner and started(owner["pid"]) == owner["started"]:
            continue  # its owner is alive and will clean up
        kernel_pid = owner.get("kernel_pid")
        if kernel_pid and started(kernel_pid) in (None, owner.get("kernel_started")):  # else the pid is another process's now
            kill(session(kernel_pid))
        shutil.rmtree(entry.path, ignore_errors=True)
        cleared.append(entry.path)
    return cleared


def start_ahead(name: str, output: int | None = None, forked: tuple | None = None) -> Kernel:
    """``start`` a kernel and record what it was made from, for ``still_current``. ``forked``: a
    connection to a zygote to fork it from, and what that zygote was made from."""
    if forked is not None:
        connection, made_from = forked
        spec = made_from[0]
        kernel = start(name, output, zygote=connection)
    else:
        spec = spec_of(name)
        made_from = made_from_now(spec, os.environ)  # before the kernel starts: a later install must show
        kernel = start(name, output)
    if described(kernel.manager.kernel_spec) == spec:  # else edited meanwhile: never current
        kernel.made_from = made_from
    return kernel


def still_current(kernel: Kernel) -> bool:
    """Whether a kernel started now would be made from the same kernelspec and installs."""
    return made_from_current(kernel.name, kernel.made_from)
