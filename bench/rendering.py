"""What rendering every executed notebook costs: the demo sweep with and without renderings.

    python bench/rendering.py                 # the demo (11 notebooks), --cores 2, 3 rounds (~3 min)
    python bench/rendering.py --rounds 1      # quick

Variants, interleaved (order rotated each round), each one `snakemake --cores N` of a fresh copy
of the demo project (config/, notebooks/, data/) with fresh outputs:
  render      the default: each run's job renders its notebook to HTML beside it
  no-render   the same config with `defaults: {render: false}`

The headline is render/no-render wall time (target < 1.10).
"""

import argparse
import shutil

import benchlib as bl
import yaml

VARIANTS = ("render", "no-render")


def demo_project(root, render: bool):
    for folder in ("config", "notebooks", "data"):
        shutil.copytree(bl.REPO / folder, root / folder)
    if not render:
        config = yaml.safe_load((root / "config" / "config.yaml").read_text())
        config.setdefault("defaults", {})["render"] = False
        (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description="Demo sweep with vs without HTML renderings.")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    bl.add_common_options(parser, checkouts=False)
    args = parser.parse_args()
    variants = bl.chosen_variants(args, parser, VARIANTS)
    with bl.workspace("Rendering cost", "rendering", args) as (facts, tmp):

        def runner(name):
            project = demo_project(tmp / name, render=name == "render")
            cmd = bl.snakemake_cmd(project, "--cores", str(args.cores))
            log = tmp / f"{name}.log"

            def run():
                shutil.rmtree(project / "papermill_outputs", ignore_errors=True)
                shutil.rmtree(project / ".snakemake", ignore_errors=True)
                t = bl.run_timed(cmd, cwd=project, log=log)
                htmls = len(list((project / "papermill_outputs").glob("*/*/*.html")))
                if htmls != (11 if name == "render" else 0):
                    raise SystemExit(f"bench: {name} made {htmls} renderings; see {log}")
                return t

            return run

        print(f"# demo sweep (11 notebooks), --cores {args.cores}, {args.rounds} round(s)", flush=True)
        results = bl.interleaved({name: runner(name) for name in variants}, args.rounds)
        rows = [
            [name, f"{bl.median_wall(ts):.1f}", f"{min(t.wall for t in ts):.1f}", f"{bl.median_cpu(ts):.1f}"]
            for name, ts in results.items()
        ]
        print()
        print(bl.table(["variant", "wall s (median)", "wall s (min)", "CPU s (tree)"], rows))
        if set(VARIANTS) <= set(results):
            ratio = bl.paired_ratio(results["render"], results["no-render"])
            print(f"render/no-render wall = {ratio:.3f} (target < 1.10: {bl.verdict(ratio, 1.10)})")
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
