"""One cluster-side job: its whole Snakemake process in a 10-run sweep vs the same job in a big one.

    python bench/cluster_job.py                          # 10 vs 10,000 runs, 5 rounds (~3 min)
    python bench/cluster_job.py --sizes 10 1000 --rounds 3

A cluster executor (SLURM, cluster-generic, ...) starts every job as its own Snakemake process on
a node: ``python -m snakemake --snakefile S --target-jobs 'nbsweep_run:notebook=N,label=L' ...
--mode remote``, which parses the workflow again (nbsweep's planning included) and then runs the
one job. That process's cost must not grow with the size of the sweep.

How the exact command line is obtained: for each size, the main ``snakemake`` is run with
``--executor cluster-generic`` and a submit command made by this script, for the target of run
``triv/p0``. Snakemake plans, nbsweep writes the run's job file (and its invocation's plan
snapshot), and the executor calls the submit command with the job script it wrote
(snakemake_interface_executor_plugins ``RealExecutor.format_job_exec``). The submit command keeps
that job script, the invocation's folder ``.snakemake/nbsweep/invocations/<id>/`` and the value
of ``NBSWEEP_INVOCATION`` (what sbatch would pass on), then fails, so the main process ends (and
removes its invocation folder, as always).

Measured: the job script's command, replayed verbatim (its wait-for folder re-created, the kept
invocation folder put back, ``NBSWEEP_INVOCATION`` set) with a STUB RUNNER (bench/benchlib.py
``STUB_RUN``: the rule's shell command stamps the target from the job file, no kernel), from a
copy of the checkout whose ``nbsweep/execution/job.py`` is that stub. Sizes interleaved, order rotated;
the figure is the median over rounds of (big / small) wall time within a round; the same for
CPU time (user + sys), steadier than wall time on a shared machine.
"""

import argparse
import re
import shlex
import shutil
import statistics
import sys
from pathlib import Path

import benchlib as bl

TARGET = "papermill_outputs/triv/p0/triv_p0.ipynb"

SUBMIT = """\
#!{python}
# Submit command made by bench/cluster_job.py: keep the job script and the invocation's folder; then fail.
import os, shutil, sys
keep = {keep!r}
os.makedirs(keep, exist_ok=True)
shutil.copyfile(sys.argv[-1], os.path.join(keep, "jobscript.sh"))
shutil.copytree(".snakemake/nbsweep/invocations", os.path.join(keep, "invocations"), dirs_exist_ok=True)
with open(os.path.join(keep, "invocation"), "w") as fh:
    fh.write(os.environ.get("NBSWEEP_INVOCATION", ""))
sys.exit(1)
"""


def capture(project: Path, stub: Path, keep: Path, log: Path) -> list[str]:
    """Run the main process until it submits the job of ``TARGET``; the job's command (argv)."""
    submit = keep.parent / f"submit-{keep.name}.py"
    submit.write_text(SUBMIT.format(python=bl.PYTHON, keep=str(keep)), encoding="utf-8")
    submit.chmod(0o755)
    cmd = bl.snakemake_cmd(
        project,
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        str(submit),
        "--jobs",
        "1",
        TARGET,
        snakefile=stub / "Snakefile",
    )
    bl.run_timed(cmd, cwd=project, log=log, env=bl.checkout_env(stub), check=False)
    script = keep / "jobscript.sh"
    if not script.is_file() or not any((keep / "invocations").glob("*/jobs/triv/p0.json")):
        raise SystemExit(f"bench: the main process submitted no job with a job file; see {log}")
    line = next(line for line in script.read_text(encoding="utf-8").splitlines() if " -m snakemake " in line)
    words = shlex.split(line.split(" && ", 1)[1].split(" && touch ", 1)[0])
    for folder in re.findall(r"--wait-for-files '([^']+/\.snakemake/tmp\.[^']+)'", line):
        Path(folder).mkdir(parents=True, exist_ok=True)
    return words


def restore(project: Path, keep: Path) -> None:
    """Put the invocation folder back as the main process left it for its jobs; no target yet."""
    dest = project / ".snakemake" / "nbsweep" / "invocations"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(keep / "invocations", dest)
    (project / TARGET).unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="One cluster-side job's process: small vs big sweep.")
    parser.add_argument("--sizes", type=int, nargs=2, default=[10, 10000], metavar=("SMALL", "BIG"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.2, help="big / small ratio to meet (default: 1.2)")
    bl.add_common_options(parser, checkouts=False)
    args = parser.parse_args()
    small, big = sorted(args.sizes)
    with bl.workspace("One cluster-side job", "cluster", args) as (facts, tmp):
        stub = bl.make_stub(bl.REPO, tmp)
        jobs = {}
        for size in (small, big):
            project = bl.make_sweep_project(tmp / f"sweep-{size}", size)
            keep = tmp / f"kept-{size}"
            words = capture(project, stub, keep, tmp / f"main-{size}.log")
            env = {**bl.checkout_env(stub), "NBSWEEP_INVOCATION": (keep / "invocation").read_text(encoding="utf-8")}
            jobs[size] = (project, keep, words, env)
            print(f"# S={size}: job command: {shlex.join(words)}", flush=True)

        def variant(size: int):
            project, keep, words, env = jobs[size]

            def run() -> bl.Timing:
                restore(project, keep)
                t = bl.run_timed(words, cwd=project, log=tmp / f"job-{size}.log", env=env)
                if not (project / TARGET).is_file():
                    raise SystemExit(f"bench: the job did not write {TARGET}; see {tmp / f'job-{size}.log'}")
                return t

            return run

        results = bl.interleaved({f"{small} runs": variant(small), f"{big} runs": variant(big)}, args.rounds)
        a, b = results[f"{small} runs"], results[f"{big} runs"]
        ratio = bl.paired_ratio(b, a)
        cpu_ratio = statistics.median(x.cpu / y.cpu for x, y in zip(b, a, strict=True))
        rows = [
            [
                f"{size:,}",
                f"{bl.median_wall(t):.2f}",
                f"{min(x.wall for x in t):.2f}",
                f"{bl.median_cpu(t):.2f}",
                f"{statistics.median(x.maxrss_mb for x in t):.0f}",
            ]
            for size, t in ((small, a), (big, b))
        ]
        print()
        print(bl.table(["sweep runs", "job wall s (median)", "min", "CPU s", "peak RSS MB"], rows))
        print(
            f"\none job's process, {big:,} vs {small:,} runs: wall {ratio:.2f}x (target <= {args.target}: {bl.verdict(ratio, args.target)}), CPU {cpu_ratio:.2f}x"
        )
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": results, "ratio": ratio, "cpu_ratio": cpu_ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
