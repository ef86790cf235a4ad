"""Jupyter kernels for runs: started on IPC sockets in a private runtime dir, stopped by us.

IPC transport means no TCP ports, so kernels started at the same moment cannot race for them
(papermill#511). nbsweep starts the kernel itself and hands it to papermill (``km=``), so it can
be started before the run is requested (the warm runner's spares) and shut down after the
notebook is already in place.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass


def kernel_config(runtime_dir: str):
    """traitlets config putting the kernel's sockets on IPC files in ``runtime_dir``."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(runtime_dir, "kernel")}})


@dataclass
class Kernel:
    name: str
    manager: object  # jupyter_client AsyncKernelManager, as nbclient uses
    runtime_dir: str

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
