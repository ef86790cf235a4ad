"""Kernels forked from a zygote that has already imported a setting's ``preload`` modules.

A spare that preloads into its own fresh kernel (``nbsweep.kernels.preload``) takes the imports off the
run's path but not off the machine: every kernel still pays the interpreter, ipykernel and the
modules. The warm server instead keeps one zygote per setting (``nbsweep.kernels.zygote``, started in the
setting, without its secret variables (``warm_client.without_secrets``), and by the kernel's own interpreter) and its spares' kernels are forks of it: the imports
are paid once per setting, and a kernel costs a fork and ipykernel's start.

``Zygote`` is the server's handle; ``ForkProvisioner`` is a jupyter_client kernel provisioner
(``LocalProvisioner`` for the connection file and ports, its own launch and process control on
the kernel's pidfd) that asks the zygote for the kernel. Only kernelspecs that run a Python module
(``python -m ipykernel_launcher -f {connection_file}``, as ipykernel installs them) can be forked;
for others, or when the zygote has gone, a kernel is started and imports the modules itself
(``nbsweep.kernels.preload``).
"""

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

from nbsweep.adapters import jupyter_internals
from nbsweep.kernels import kernelspec, process_setting

SCRIPT = Path(__file__).with_name("zygote.py")
LAUNCH_SECONDS = 300  # how long a spare waits for its kernel (the zygote may still be importing)


def command(spec: dict) -> list[str] | None:
    """The kernel command's ``python -m MODULE`` form in ``spec`` with the interpreter resolved; None if not one."""
    python = kernelspec.interpreter(spec)
    argv = spec["argv"]
    if python is None or len(argv) < 3 or argv[1] != "-m" or not any("{connection_file}" in arg for arg in argv):
        return None
    return [python, *argv[1:]]


@dataclass
class Zygote:
    """The server's end of a zygote for one setting."""

    kernel_name: str
    pid: int
    control: socket.socket
    made_from: tuple  # kernelspec, site dirs and their signature when it imported (``lifecycle.still_current``)

    @classmethod
    def start(cls, kernel_name: str, modules: tuple[str, ...], cwd: str, env: dict, setting: dict) -> "Zygote | None":
        """A zygote importing ``modules`` for kernel ``kernel_name`` in that setting; None if the kernel can't be forked."""
        try:
            spec = kernelspec.spec_of(kernel_name)
        except Exception:  # noqa: BLE001 -- no such kernel: the spare's own start will say why
            return None
        cmd = command(spec)
        if cmd is None:
            return None
        made_from = kernelspec.made_from_now(spec, env)  # before it imports: a later install must show
        env = {**env, **spec["env"]}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [cmd[0], str(SCRIPT), str(theirs.fileno()), json.dumps(list(modules))],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
                preexec_fn=lambda: process_setting.apply(setting),  # noqa: PLW1509 -- the server has no threads
            )
        except (OSError, subprocess.SubprocessError):
            ours.close()
            return None
        finally:
            theirs.close()
        return cls(kernel_name, process.pid, ours, made_from)

    def connection(self) -> socket.socket:
        """A new connection to the zygote, for one spare (``ForkFailed`` if it has gone)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self.control, [b"c"], [theirs.fileno()])
        except OSError as err:
            ours.close()
            raise ForkFailed(f"the zygote has gone ({err})") from None
        finally:
            theirs.close()
        return ours

    def current(self) -> bool:
        """Whether a zygote started now would import from the same kernelspec and installs."""
        return kernelspec.made_from_current(self.kernel_name, self.made_from)

    def close(self) -> None:
        """Dismiss it: it exits once the kernels forked from it have ended."""
        self.control.close()


class ForkFailed(Exception):
    """The zygote could not give a kernel (it has gone, timed out, or could not import): start one as usual."""


class ForkProvisioner(LocalProvisioner):
    """Launch the kernel as a fork of the zygote on ``channel``; watch and signal it through its pidfd.

    The kernel is the zygote's child, not ours: its exit status is not known here (reported as 0).
    """

    channel: socket.socket | None = None  # set by ``lifecycle.start``
    kernel_fd: int | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        pid, self.kernel_fd = launch(self.channel, cmd, kwargs)
        jupyter_internals.record_launch(self, pid, pgid=pid, cwd=kwargs.get("cwd") or os.getcwd())  # it leads its own session
        return self.connection_info

    @property
    def has_process(self) -> bool:
        return self.kernel_fd is not None

    async def poll(self) -> int | None:
        if self.kernel_fd is None or select.select([self.kernel_fd], [], [], 0)[0]:
            return 0
        return None

    async def wait(self) -> int | None:
        while await self.poll() is None:
            await asyncio.sleep(0.05)
        if self.kernel_fd is not None:
            os.close(self.kernel_fd)
            self.kernel_fd = None
        return 0

    async def send_signal(self, signum: int) -> None:
        if self.kernel_fd is None:
            return
        try:
            os.killpg(self.pgid, signum)  # its session's group: the kernel and what it started
        except OSError:
            try:
                signal.pidfd_send_signal(self.kernel_fd, signum)
            except ProcessLookupError:
                pass  # it has ended already

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)


def launch(channel: socket.socket | None, cmd: list[str], kwargs: dict) -> tuple[int, int]:
    """Ask the zygote on ``channel`` to fork kernel ``cmd`` as jupyter_client would launch it; its pid and pidfd."""
    if channel is None:
        raise ForkFailed("no zygote")
    output = kwargs.get("stdout")
    owner = os.pidfd_open(os.getpid())
    env = jupyter_internals.launch_environment(kwargs.get("env") or os.environ)
    request = {"cmd": cmd, "env": env, "cwd": str(kwargs.get("cwd") or os.getcwd())}
    try:
        channel.settimeout(LAUNCH_SECONDS)
        socket.send_fds(channel, [json.dumps(request).encode()], [1 if output is None else output, owner])
        message, fds, _, _ = socket.recv_fds(channel, 1 << 16, 1)
    except OSError as err:
        raise ForkFailed(f"the zygote did not answer ({err})") from None
    finally:
        os.close(owner)
    reply = json.loads(message) if message else {"failed": "the zygote has gone"}
    if "pid" not in reply or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ForkFailed(reply.get("failed", "no kernel"))
    return reply["pid"], fds[0]
