"""I/O-bound parallelism: N notebooks that each sleep, run with many more job slots than cores.

    python bench/io_parallel.py                 # 8 notebooks x 2 s, --cores 8, 3 rounds (~2 min)
    python bench/io_parallel.py --rounds 1      # quick

Variants, interleaved (order rotated each round), each timed end to end as one command:
  sequential  bench/seed_pool.py --processes 0: papermill.execute_notebook one after another
  nbsweep     snakemake -s Snakefile -d PROJECT --cores 8 (the real workflow)
  pool        bench/seed_pool.py --processes 8 (a bounded papermill pool, for reference)

The headline is sequential/nbsweep (target >= 6x). The ideal is N x (sleep + per-notebook cost)
over (sleep + per-notebook cost + startup), i.e. a bit under N.
"""

import argparse

import benchlib as bl

VARIANTS = ("sequential", "nbsweep", "pool")


def main() -> int:
    parser = argparse.ArgumentParser(description="Speed-up of nbsweep over sequential papermill on sleeping notebooks.")
    parser.add_argument("--n", type=int, default=8, help="notebooks (default: 8)")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each notebook sleeps (default: 2)")
    parser.add_argument("--cores", type=int, default=8, help="--cores for Snakemake and the pool size (default: 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    bl.add_common_options(parser)
    args = parser.parse_args()
    variants = bl.chosen_variants(args, parser, VARIANTS)
    checkouts = bl.parse_checkouts(args.checkout, parser)
    body = f"import time\ntime.sleep({args.sleep!r})"
    with bl.workspace("I/O-bound parallelism", "io", args) as (facts, tmp):
        commands = {}
        for name in variants + list(checkouts):
            project = bl.make_project(tmp / name.replace(":", "-"), args.n, body=body)
            template = str(project / "notebooks" / f"{bl.TEMPLATE_NAME}.ipynb")
            if name == "sequential":
                cmd = [bl.PYTHON, str(bl.BENCH / "seed_pool.py"), template, str(project / "out"), str(args.n), "--processes", "0"]
            elif name == "pool":
                cmd = [
                    bl.PYTHON,
                    str(bl.BENCH / "seed_pool.py"),
                    template,
                    str(project / "out"),
                    str(args.n),
                    "--processes",
                    str(args.cores),
                ]
            elif name in checkouts:
                cmd = bl.snakemake_cmd(project, "--cores", str(args.cores), snakefile=checkouts[name] / "Snakefile")
            else:
                cmd = bl.snakemake_cmd(project, "--cores", str(args.cores))
            commands[name] = (project, cmd, bl.checkout_env(checkouts[name]) if name in checkouts else None)

        def runner(project, cmd, env, log):
            def run():
                bl.reset_outputs(project)
                t = bl.run_timed(cmd, cwd=project, log=log, env=env)
                made = sum(1 for _ in project.glob("*/triv/p*/triv_p*.ipynb"))
                if made != args.n:
                    raise SystemExit(f"bench: {cmd[:4]}... made {made} of {args.n} notebooks; see {log}")
                return t

            return run

        print(f"# N={args.n} notebooks sleeping {args.sleep} s, --cores {args.cores}, {args.rounds} round(s)", flush=True)
        results = bl.interleaved({n: runner(p, c, e, tmp / f"{n.replace(':', '-')}.log") for n, (p, c, e) in commands.items()}, args.rounds)
        rows = []
        for name in results:
            ts = results[name]
            speedup = f"{bl.paired_ratio(results['sequential'], ts):.2f}" if "sequential" in results else "-"
            rows.append(
                [
                    name,
                    f"{bl.median_wall(ts):.1f}",
                    f"{min(t.wall for t in ts):.1f}",
                    f"{bl.median_cpu(ts):.1f}",
                    f"{bl.median_machine_cpu(ts):.1f}",
                    speedup,
                ]
            )
        print()
        print(bl.table(["variant", "wall s (median)", "wall s (min)", "CPU s (tree)", "CPU s (machine)", "speed-up vs sequential"], rows))
        if "sequential" in results:
            for name in [v for v in results if v.startswith("nbsweep")]:
                s = bl.paired_ratio(results["sequential"], results[name])
                print(
                    f"{name} speed-up over sequential = {s:.2f}x (target >= 6x: {bl.verdict(s, 6, higher_is_better=True)}; sleep-only bound {args.n}x)"
                )
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
