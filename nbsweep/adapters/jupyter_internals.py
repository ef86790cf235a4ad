"""What nbsweep relies on in jupyter_client beyond its documented interface.

Each function wraps one use and names the version it was checked against; ``tests/unit/test_adapters.py``
fails loudly when a release changes what one relies on. (The zygote, ``nbsweep.kernels.zygote``, runs in
the kernel's interpreter without nbsweep: its list of ipykernel modules stays there, checked by the same
tests.) Imports nothing of nbsweep.
"""

import os
import uuid


def preset_provisioner(manager, provisioner_class):
    """Have ``manager`` (not started yet) start its kernel with a new ``provisioner_class`` instead
    of the provisioner its kernelspec names; that provisioner."""
    # jupyter_client 8.10.0: KernelManager._async_pre_start_kernel makes a provisioner only while
    # ``manager.provisioner`` is None, built as KernelProvisionerFactory.create_provisioner_instance does
    manager.kernel_id = str(uuid.uuid4())
    manager.provisioner = provisioner_class(kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec, parent=manager)
    return manager.provisioner


def kernel_pid(manager) -> int | None:
    """The pid of the kernel process ``manager`` started (None if its provisioner knows none)."""
    return getattr(manager.provisioner, "pid", None)  # jupyter_client 8.10.0: LocalProvisioner.pid, set by launch_kernel


def record_launch(provisioner, pid: int, pgid: int, cwd: str) -> None:
    """Record a kernel a ``LocalProvisioner`` subclass launched itself, as ``LocalProvisioner.launch_kernel``
    does: its other methods (cleanup, provisioner info, path resolution) read these."""
    # jupyter_client 8.10.0: LocalProvisioner.pid, .pgid, .cwd
    provisioner.pid, provisioner.pgid, provisioner.cwd = pid, pgid, cwd


def launch_environment(env: dict) -> dict:
    """``env`` as ``jupyter_client.launcher.launch_kernel`` gives it to a kernel: with this process as the
    kernel's parent (ipykernel's parent poller exits the kernel when it dies)."""
    return {**env, "JPY_PARENT_PID": str(os.getpid())}  # jupyter_client 8.10.0 sets it; ipykernel 7.4.0 reads it


def channel_url(info: dict, channel: str) -> str:
    """The ZeroMQ address of a kernel's ``channel`` (``shell``, ``iopub``, ...) from its connection info."""
    # jupyter_client 8.10.0: ConnectionFileMixin._make_url
    if info["transport"] == "tcp":
        return f"tcp://{info['ip']}:{info[f'{channel}_port']}"
    return f"{info['transport']}://{info['ip']}-{info[f'{channel}_port']}"
