"""Per-notebook overhead: the same N trivial notebooks run four ways, side by side.

    python bench/overhead.py                      # N=32, 2 cores, 2 interleaved rounds (~4 min)
    python bench/overhead.py --n 200 --rounds 1   # the big case (~13 min with all four variants)
    python bench/overhead.py --n 8 --rounds 1     # smoke test (~1 min)

Variants (each timed end to end as one command, fresh outputs and fresh .snakemake/ each time):
  pool        bench/seed_pool.py: multiprocessing.Pool(cores) calling papermill.execute_notebook
              (the seed blog post's approach, fixed to be bounded)
  sequential  bench/seed_pool.py --processes 0: one papermill.execute_notebook after another
  nbsweep     snakemake -s Snakefile -d PROJECT --cores cores (the real workflow, its profile included)
  naive       a one-rule Snakefile with ``shell: "papermill -p x {wildcards.x} {input} {output}"``
              (run with --retries 3: its TCP kernels sometimes race for ports)

The headline figure is nbsweep/pool (target <= 1.10); ratios are medians over rounds of the
ratio within a round. CPU is user+sys of the command and everything it started (kernels too),
so CPU per notebook shows where per-job cost comes from; nbsweep's warm runner is a separate
server process whose forks it misses, hence also the machine's busy CPU over the same interval.
"""

import argparse
import statistics
from pathlib import Path

import benchlib as bl

NAIVE_SNAKEFILE = """\
# The naive rule: one papermill CLI process per notebook.
N = int(config["count"])


rule all:
    input:
        expand("out/triv/p{x}/triv_p{x}.ipynb", x=range(N)),


rule notebook:
    input:
        "notebooks/triv.ipynb",
    output:
        "out/triv/p{x}/triv_p{x}.ipynb",
    shell:
        "papermill --no-progress-bar -p x {wildcards.x} {input} {output}"
"""

VARIANTS = ("pool", "sequential", "nbsweep", "naive")


def build(tmp: Path, n: int, cores: int, variants: list[str], checkouts: dict[str, Path]) -> dict:
    """One project directory per variant (so no variant sees another's state); their commands."""
    commands = {}
    for name in variants + list(checkouts):
        project = bl.make_project(tmp / f"{name.replace(':', '-')}-n{n}", n)
        template = project / "notebooks" / f"{bl.TEMPLATE_NAME}.ipynb"
        if name == "pool":
            cmd = [bl.PYTHON, str(bl.BENCH / "seed_pool.py"), str(template), str(project / "out"), str(n), "--processes", str(cores)]
        elif name == "sequential":
            cmd = [bl.PYTHON, str(bl.BENCH / "seed_pool.py"), str(template), str(project / "out"), str(n), "--processes", "0"]
        elif name == "nbsweep":
            cmd = bl.snakemake_cmd(project, "--cores", str(cores))
        elif name == "naive":
            snakefile = project / "naive.smk"
            snakefile.write_text(NAIVE_SNAKEFILE, encoding="utf-8")
            # --retries: TCP kernels started together can race for ports ("Kernel died before replying to
            # kernel_info"; 1 in ~200 here), which would otherwise end the naive sweep.
            cmd = bl.snakemake_cmd(project, "--cores", str(cores), "--retries", "3", "--config", f"count={n}", snakefile=snakefile)
        elif name in checkouts:
            cmd = bl.snakemake_cmd(project, "--cores", str(cores), snakefile=checkouts[name] / "Snakefile")
        commands[name] = (project, cmd, bl.checkout_env(checkouts[name]) if name in checkouts else None)
    return commands


def runner(project: Path, cmd: list[str], env: dict | None, n: int, log: Path):
    def run() -> bl.Timing:
        bl.reset_outputs(project)
        timing = bl.run_timed(cmd, cwd=project, log=log, env=env)
        outputs = list(project.glob("*/triv/p*/triv_p*.ipynb"))
        bl.output_phases(timing, outputs)
        made = len(outputs)
        if made != n:
            raise SystemExit(f"bench: {cmd[:4]}... made {made} of {n} notebooks; see {log}")
        return timing

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description="Per-notebook overhead of nbsweep vs a bounded papermill pool.")
    parser.add_argument("--n", type=int, nargs="+", default=[32], help="numbers of notebooks (default: 32)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions per N (default: 2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    bl.add_common_options(parser)
    args = parser.parse_args()
    variants = bl.chosen_variants(args, parser, VARIANTS)
    checkouts = bl.parse_checkouts(args.checkout, parser)
    raw, rows = {}, []
    with bl.workspace("Per-notebook overhead", "overhead", args) as (facts, tmp):
        for n in args.n:
            commands = build(tmp, n, args.cores, variants, checkouts)
            print(f"# N={n}, cores={args.cores}, {args.rounds} round(s), order rotated each round", flush=True)
            results = bl.interleaved(
                {
                    name: runner(project, cmd, env, n, tmp / f"{name.replace(':', '-')}-n{n}.log")
                    for name, (project, cmd, env) in commands.items()
                },
                args.rounds,
                busy_load=args.busy_load,
            )
            raw[n] = results
            for name in results:
                ts = results[name]
                ratio = f"{bl.paired_ratio(ts, results['pool']):.2f}" if "pool" in results else "-"
                steady = bl.steady_per_output(ts, n)
                pool_steady = bl.steady_per_output(results["pool"], n) if "pool" in results else None
                rows.append(
                    [
                        n,
                        name,
                        f"{bl.median_wall(ts):.1f}",
                        f"{min(t.wall for t in ts):.1f}",
                        f"{statistics.median(t.first_output for t in ts):.1f}",
                        f"{statistics.median(t.wall - t.last_output for t in ts):.1f}",
                        f"{steady:.3f}" if steady else "-",
                        f"{steady / pool_steady:.2f}" if steady and pool_steady else "-",
                        f"{bl.median_cpu(ts) / n:.2f}",
                        f"{bl.median_machine_cpu(ts) / n:.2f}",
                        ratio,
                    ]
                )
        print()
        print(
            bl.table(
                [
                    "N",
                    "variant",
                    "wall s",
                    "wall s (min)",
                    "1st nb at s",
                    "exit after last s",
                    "s / nb steady",
                    "steady x pool",
                    "CPU s / nb",
                    "machine CPU s / nb",
                    "wall x pool",
                ],
                rows,
            )
        )
        print(
            "wall s: median over rounds; 1st nb at: start-up until the first notebook is complete; s / nb steady: "
            "(last - first notebook) / (N - 1), i.e. throughput without start-up and wrap-up"
        )
        print(
            "CPU: the command's process tree (misses nbsweep's warm runner, a separate server); machine CPU: the "
            "whole machine meanwhile (includes any other work: trust it on a quiet machine only)"
        )
        if "pool" in variants:
            for n, results in raw.items():
                for name in [v for v in results if v.startswith("nbsweep")]:
                    r = bl.paired_ratio(results[name], results["pool"])
                    print(f"N={n}: {name}/pool = {r:.2f} (target <= 1.10: {bl.verdict(r, 1.10)})")
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": raw})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
