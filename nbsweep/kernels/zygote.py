"""The zygote: a process that has imported a setting's ``preload`` modules and forks kernels from itself.

Run by the kernel's own interpreter as a script (``python .../zygote.py FD MODULES_JSON``), so it
needs nothing but the standard library and ipykernel, and puts nothing of nbsweep in the kernel.
The warm server starts one per setting (kernel, modules, directory, environment, process setting:
``nbsweep.kernels.forking``), in that setting. It imports the kernel's own code (all but ``ipykernel.kernelapp``) and the modules once, as
a fresh kernel would (matplotlib's backend chosen as ipykernel chooses it; the directory on
``sys.path``), then serves: on FD (control) it receives one connection per spare; on a connection,
a launch request (the kernel command, environment and directory jupyter_client made, plus the
kernel's output and the requester's pidfd) gets a fork that becomes the kernel, and the reply is
its pid (and a pidfd of it). If the imports failed, or left what forks would share instead of
each having its own (threads, child processes, random generators seeded at import), every request
gets the reason instead, and the spare imports the modules in a kernel it starts.

The forked kernel leads a new session and is a child subreaper (whatever the run starts, even a
daemon that leaves the session, stays its descendant, so its owner can end all of it), takes on
the request's environment (plus what the imports changed in theirs) and directory, reseeds numpy's global RNG (Python's ``random`` reseeds
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
# ipykernel 7.4.0 checked (tests/unit/test_adapters.py; this script imports nothing of nbsweep.adapters).
KERNEL_MODULES = (
    "IPython.core.application",
    "IPython.core.shellapp",
    "ipykernel.control",
    "ipykernel.heartbeat",
    "ipykernel.parentpoller",
    "ipykernel.shellchannel",
)
INLINE = "module://matplotlib_inline.backend_inline"  # what ipykernel 7.4.0 sets MPLBACKEND to (kernelapp.init_gui_pylab)


def main(control_fd: int, modules: list[str]) -> None:
    control = socket.socket(fileno=control_fd)
    why, changes = prepare(modules)
    helpers = [os.pidfd_open(int(pid)) for pids in child_lists() for pid in pids]  # started by the imports (then: no forking)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # after the imports: a command one runs gets its exit status
    connections: list[socket.socket] = []
    while True:
        ready, _, _ = select.select([control, *connections], [], [])
        if control in ready:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
            if not message:
                break
            connections += [socket.socket(fileno=fd) for fd in fds]
        for conn in [c for c in ready if c is not control]:
            if not answer(conn, why, changes, [control, *connections]):
                connections.remove(conn)
                conn.close()
    for conn in [control, *connections]:
        conn.close()
    for helper in helpers:  # they end with the zygote, as they would with a kernel that imported the modules
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(helper, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PIDFD, helper, os.WEXITED)
    try:
        os.wait()  # with SIGCHLD ignored: returns (ECHILD) once every kernel forked has ended
    except ChildProcessError:
        pass


def prepare(modules: list[str]) -> tuple[str | None, dict]:
    """Import the kernel's code and ``modules`` as a fresh kernel's imports would see them. Returns
    why forked kernels would not be what fresh ones are (None if they would), and what the imports
    changed that each kernel then changes too: ``environment`` (name -> value, None if removed)
    and ``directory`` (None if they did not change it)."""
    started_in = os.getcwd()
    sys.path.insert(cwd_position(), "")  # the kernel's directory, where IPython puts it (taken out again in a kernel)
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = INLINE  # kernels get their request's environment: this one does not stay
    before = dict(os.environ)
    try:
        __import__("ipykernel.ipkernel")
        for name in KERNEL_MODULES:
            with contextlib.suppress(ImportError):  # another ipykernel's layout: the kernel imports what it needs
                __import__(name)
        for name in modules:
            __import__(name)
    except BaseException as err:  # noqa: BLE001 -- any failure only means: no preloaded kernels
        return f"{type(err).__name__}: {err}".strip(), {"environment": {}, "directory": None}
    environment = {name: value for name, value in os.environ.items() if before.get(name) != value}
    environment.update({name: None for name in before if name not in os.environ})
    directory = os.getcwd() if os.getcwd() != started_in else None
    return shared_state(), {"environment": environment, "directory": directory}


def shared_state() -> str | None:
    """What the imports left that forks would share instead of each having their own, if anything:
    threads (a fork has none of them), child processes, random generators seeded at import."""
    if threading.active_count() > 1:
        return "importing them started threads, which a forked kernel would not have"
    if any(child_lists()):
        return "importing them started processes, which forked kernels would share"
    if generators := seeded_generators():
        return f"importing them made random generators ({', '.join(generators)}), which every forked kernel would repeat"
    return None


def child_lists():
    """The children of each of this process's threads (Linux ``/proc``)."""
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as fh:
                yield fh.read().split()
        except OSError:
            yield []


def seeded_generators() -> list[str]:
    """Random generators made while importing, other than the global ones a fork reseeds (``reseed``)."""
    import gc
    import random

    numpy_random = sys.modules.get("numpy.random")
    known = {id(random._inst)}  # noqa: SLF001 -- the module-level generator, reseeded by random at fork
    kinds: tuple = (random.Random,)
    if numpy_random is not None:
        kinds += (numpy_random.Generator, numpy_random.RandomState, numpy_random.BitGenerator)
        legacy = numpy_random.mtrand._rand  # noqa: SLF001 -- numpy's global RandomState, reseeded by ``reseed``
        known |= {id(legacy), id(legacy._bit_generator)}  # noqa: SLF001
    objects = gc.get_objects()
    if (tempfile := sys.modules.get("tempfile")) is not None:  # file-name sequences (tempfile's, joblib's): remade in a new process
        sequences = [seq for seq in objects if isinstance(seq, tempfile._RandomNameSequence)]  # noqa: SLF001
        known |= {id(seq._rng) for seq in sequences if hasattr(seq, "_rng")}  # noqa: SLF001
    found = [obj for obj in objects if isinstance(obj, kinds) and id(obj) not in known and not isinstance(obj, random.SystemRandom)]
    return sorted({type(obj).__qualname__ for obj in found})


def cwd_position() -> int:
    """Where IPython's ``init_path`` puts ``""`` on ``sys.path``: before the first site-packages."""
    for index, path in enumerate(sys.path):
        if os.path.basename(path) in {"site-packages", "dist-packages"}:
            return index
    return 0


def answer(conn: socket.socket, why: str | None, changes: dict, ours: list[socket.socket]) -> bool:
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
            become_kernel(request, changes, output=fds[0], owner=fds[1], ours=ours)
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


def become_kernel(request: dict, changes: dict, output: int, owner: int, ours: list[socket.socket]) -> None:
    """In the fork: take on the request (its directory and environment, then what the imports
    changed in them: ``changes`` from ``prepare``), then run the kernel command; never returns."""
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
        os.chdir(changes["directory"] or request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for name, value in changes["environment"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if "" in sys.path:  # unless an import took it out: then as the interpreter started it, for ipykernel and IPython to set up
            sys.path.remove("")
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
