"""The seed blog post's approach, fixed to be bounded: papermill's Python API in a process pool.

The post (shared/seed/parallel-jupyter-notebooks.md, its run_nb_batch.py) starts one
``multiprocessing.Process`` per config entry, all at once. Here the same work goes through a
``multiprocessing.Pool(processes)`` so at most ``processes`` notebooks run at a time; with
``--processes 0`` the notebooks run one after another in this process (plain sequential
papermill). Outputs follow the seed's layout: OUT/<name>/<label>/<name>_<label>.ipynb.

Kernels talk over IPC files in a private runtime dir per process, as nbsweep's do: with the
seed's default TCP transport, kernels started at the same moment can pick the same ports
(papermill#511, jupyter_client#487), and 1 of 200 notebooks failed with "Kernel died before
replying to kernel_info" in this bench. ``--tcp`` restores the seed's transport.

    python bench/seed_pool.py TEMPLATE OUT N [--processes P] [--parameter x] [--tcp]

Run i gets ``{parameter: i}`` and the label ``p{i}``, like the grid the nbsweep bench uses.
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

import papermill as pm

TRANSPORT = {"ipc": True}


def kernel_config():
    """IPC sockets in a runtime dir private to this process (made once per worker)."""
    if not TRANSPORT["ipc"]:
        return None
    from traitlets.config import Config

    if "runtime" not in TRANSPORT:
        TRANSPORT["runtime"] = tempfile.mkdtemp(prefix="seed-pool-")
        os.environ["JUPYTER_RUNTIME_DIR"] = TRANSPORT["runtime"]
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(TRANSPORT["runtime"], "kernel")}})


def run_one(task: tuple[str, str, dict]) -> str:
    template, output, parameters = task
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(template, output, parameters=parameters, progress_bar=False, config=kernel_config())
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template")
    parser.add_argument("out")
    parser.add_argument("n", type=int)
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count(), help="pool size; 0 = sequential")
    parser.add_argument("--parameter", default="x")
    parser.add_argument("--tcp", action="store_true", help="kernels on TCP ports (the seed's default) instead of IPC files")
    args = parser.parse_args(argv)
    TRANSPORT["ipc"] = not args.tcp

    name = Path(args.template).stem
    tasks = [(args.template, str(Path(args.out) / name / f"p{i}" / f"{name}_p{i}.ipynb"), {args.parameter: i}) for i in range(args.n)]
    if args.processes == 0:
        for task in tasks:
            run_one(task)
    else:
        with multiprocessing.Pool(args.processes) as pool:
            for _ in pool.imap_unordered(run_one, tasks, chunksize=1):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
