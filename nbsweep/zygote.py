"""The zygote: a process that has imported a setting's ``preload`` modules and forks kernels from itself.

Run by the kernel's own interpreter as a script (``python .../zygote.py FD MODULES_JSON``), so it
needs nothing but the standard library and ipykernel, and puts nothing of nbsweep in the kernel.
The warm server starts one per setting (kernel, modules, directory, environment, process setting:
``nbsweep.forking``), in that setting. It imports the kernel's own code (all but ``ipykernel.kernelapp``) and the modules once, as
a fresh kernel would (matplotlib's backend chosen as ipykernel chooses it; the directory on
``sys.path``), then serves: on FD (control) it receives one connection per spare; on a connection,
a launch request (the kernel command, environment and directory jupyter_client made, plus the
kernel's output and the requester's pidfd) gets a fork that becomes the kernel, and the reply is
its pid (and a pidfd of it). If the imports failed, every request gets the reason instead.

The forked kernel leads a new session and is a child subreaper (whatever the run starts, even a
daemon that leaves the session, stays its descendant, so its owner can end all of it), takes on
the request's environment and directory, reseeds numpy's global RNG (Python's ``random`` reseeds
itself in a forked child), exits when its requester dies, and runs ``python -m <module> ARGS`` as
the kernel command says. The zygote ignores SIGCHLD (its children are reaped by the OS; the kernel
gets the default back) and exits once the control channel closes and its kernels have ended.
"""

import sys

del sys.path[0]  # this script's folder (nbsweep's package) must never be importable in a kernel

import contextlib  # noqa: E402 -- after the path is fixed
import json  # noqa: E402
import os  # noqa: E402
import runpy  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402

MESSAGE = 1 << 20  # largest request (an environment) read in one message
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
# What ipykernel.kernelapp imports besides ipykernel.ipkernel, but not kernelapp itself: its traits'
# defaults read the environment jupyter_client launches each kernel with (JPY_PARENT_PID).
KERNEL_MODULES = (
    "IPython.core.application",
    "IPython.core.shellapp",
    "ipykernel.control",
    "ipykernel.heartbeat",
    "ipykernel.parentpoller",
    "ipykernel.shellchannel",
)
INLINE = "module://matplotlib_inline.backend_inline"  # what ipykernel sets MPLBACKEND to (kernelapp.init_gui_pylab)


def main(control_fd: int, modules: list[str]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    why = prepare(modules)
    connections: list[socket.socket] = []
    while True:
        ready, _, _ = select.select([control, *connections], [], [])
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
            if not message:
                break
            connections += [socket.socket(fileno=fd) for fd in fds]
        for conn in [c for c in ready if c is not control]:
            if not serve(conn, why, [control, *connections]):
                connections.remove(conn)
                conn.close()
    for conn in [control, *connections]:
        conn.close()
    try:
        os.wait()  # with SIGCHLD ignored: returns (ECHILD) once every kernel forked has ended
    except ChildProcessError:
        pass


def prepare(modules: list[str]) -> str | None:
    """Import the kernel's code and ``modules`` as a fresh kernel's imports would see them; None, or why not.
    (A kernel takes on its request's environment: what is set here for the imports does not stay.)"""
    sys.path.insert(cwd_position(), "")  # the kernel's directory, where IPython puts it (taken out again in a kernel)
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = INLINE
    try:
        __import__("ipykernel.ipkernel")
        for name in KERNEL_MODULES:
            with contextlib.suppress(ImportError):  # another ipykernel's layout: the kernel imports what it needs
                __import__(name)
        for name in modules:
            __import__(name)
    except BaseException as err:  # noqa: BLE001 -- any failure only means: no preloaded kernels
        return f"{type(err).__name__}: {err}".strip()
    if threading.active_count() > 1:
        return "importing them started threads, which a forked kernel would not have"
    return None


def cwd_position() -> int:
    """Where IPython's ``init_path`` puts ``""`` on ``sys.path``: before the first site-packages."""
    for index, path in enumerate(sys.path):
        if os.path.basename(path) in {"site-packages", "dist-packages"}:
            return index
    return 0


def serve(conn: socket.socket, why: str | None, ours: list[socket.socket]) -> bool:
    """Answer one launch request on ``conn``; False once the requester has closed it."""
    try:
        message, fds, _, _ = socket.recv_fds(conn, MESSAGE, 2)
    except OSError:
        return False
    if not message:
        return False
    try:
        if why is not None or len(fds) != 2:
            conn.sendall(json.dumps({"failed": why or "launch request without its descriptors"}).encode())
            return True
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            become_kernel(request, output=fds[0], owner=fds[1], ours=ours)
        try:
            kernel = os.pidfd_open(pid)
        except OSError as err:  # it died already
            conn.sendall(json.dumps({"failed": f"the kernel exited at once ({err})"}).encode())
            return True
        socket.send_fds(conn, [json.dumps({"pid": pid}).encode()], [kernel])
        os.close(kernel)
        return True
    except OSError:
        return False
    finally:
        for fd in fds:
            os.close(fd)


def become_kernel(request: dict, output: int, owner: int, ours: list[socket.socket]) -> None:
    """In the fork: take on the request, then run the kernel command; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sock in ours:
            sock.close()
        os.setsid()
        subreaper()
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(stdin)
        os.close(output)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path.remove("")  # as the interpreter started it: ipykernel and IPython then set it up as in any kernel
        reseed()
        exit_with(owner)
        cmd = request["cmd"]
        sys.argv = [cmd[2], *cmd[3:]]  # python -m MODULE ARGS: runpy sets argv[0] to the module's file
        runpy.run_module(cmd[2], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    except KeyboardInterrupt:
        code = 130  # interrupted (shut down) before it could take SIGINT as a kernel does
    except BaseException:  # noqa: BLE001 -- reported on the kernel's stderr, as a crashing kernel's would be
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def subreaper() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reseed() -> None:
    """Give this fork its own random state where a module seeded one at import (numpy's global RNG)."""
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()


def exit_with(owner: int) -> None:
    """Exit when the process that asked for this kernel (``owner``, a pidfd) ends, as a kernel whose parent dies does."""

    def wait():
        select.select([owner], [], [])
        os._exit(1)

    threading.Thread(target=wait, daemon=True, name="nbsweep-owner").start()


if __name__ == "__main__":
    main(int(sys.argv[1]), json.loads(sys.argv[2]))
