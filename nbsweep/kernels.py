"""Jupyter kernels for runs: started on IPC sockets in a private runtime dir, stopped by us.

IPC transport means no TCP ports, so kernels started at the same moment cannot race for them
(papermill#511). nbsweep starts the kernel itself and hands it to papermill (``km=``), so it can
be started before the run is requested (the warm runner's spares) and shut down after the
notebook is already in place.

A kernel started ahead records what it was made from (``start_ahead``): its kernelspec and the
state of its interpreter's site directories. ``still_current`` tells whether a kernel started now
would be made from the same, so an edited ``kernel.json`` or a new install is never missed.
"""

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

from . import site_state


def kernel_config(runtime_dir: str):
    """traitlets config putting the kernel's sockets on IPC files in ``runtime_dir``."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(runtime_dir, "kernel")}})


@dataclass
class Kernel:
    name: str
    manager: object  # jupyter_client AsyncKernelManager, as nbclient uses
    runtime_dir: str
    made_from: tuple | None = None  # kernels started ahead: kernelspec, site dirs and their signature

    def stop(self, now: bool = False) -> None:
        """Shut the kernel down (``now``: kill it) and remove its runtime dir."""
        from jupyter_core.utils import run_sync

        try:
            if run_sync(self.manager.is_alive)():
                run_sync(self.manager.shutdown_kernel)(now=now)
        finally:
            run_sync(self.manager.cleanup_resources)()
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def start(name: str, output: int | None = None) -> Kernel:
    """Start kernel ``name`` in this process's directory and environment.

    ``output``: a file descriptor for the kernel's stdout and stderr (default: this process's).
    """
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    runtime_dir = tempfile.mkdtemp(prefix="nbsweep-")
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime_dir
    manager = AsyncKernelManager(kernel_name=name, config=kernel_config(runtime_dir))
    streams = {} if output is None else {"stdout": output, "stderr": output}
    try:
        run_sync(manager.start_kernel)(**streams)
    except BaseException:
        shutil.rmtree(runtime_dir, ignore_errors=True)
        raise
    return Kernel(name, manager, runtime_dir)


def spec_of(name: str) -> dict:
    """Kernelspec ``name`` as a kernel started now would use it: its folder and ``kernel.json`` content."""
    from jupyter_client.kernelspec import KernelSpecManager

    return described(KernelSpecManager().get_kernel_spec(name))


def described(spec) -> dict:
    return {"resource_dir": spec.resource_dir, **spec.to_dict()}


def interpreter(spec: dict) -> str | None:
    """The Python a kernelspec runs, read as jupyter_client does (``python``/``python3`` mean this one)."""
    argv0 = spec["argv"][0] if spec["argv"] else ""
    if spec["language"].lower() != "python" or not os.path.basename(argv0).startswith("python"):
        return None
    version = sys.version_info
    return sys.executable if argv0 in {"python", f"python{version[0]}", f"python{version[0]}.{version[1]}"} else argv0


def start_ahead(name: str, output: int | None = None) -> Kernel:
    """``start`` a kernel and record what it was made from, for ``still_current``."""
    spec = spec_of(name)
    python = interpreter(spec)
    dirs = site_state.interpreter_site_dirs(python, {**os.environ, **spec["env"]}) if python else []
    signature = site_state.signature(dirs)  # before the kernel starts: a later install must show
    kernel = start(name, output)
    if described(kernel.manager.kernel_spec) == spec:  # else edited meanwhile: never current
        kernel.made_from = (spec, dirs, signature)
    return kernel


def still_current(kernel: Kernel) -> bool:
    """Whether a kernel started now would be made from the same kernelspec and installs."""
    if kernel.made_from is None:
        return False
    spec, dirs, signature = kernel.made_from
    try:
        return spec_of(kernel.name) == spec and site_state.signature(dirs) == signature
    except (KeyError, OSError, ValueError):  # the kernelspec has gone (NoSuchKernel) or is unreadable: a new start says why
        return False
