"""Planning at scale: dry-run and no-op beside a bare Snakemake workflow, scheduler, profile.

    python bench/planning.py                          # 1,000 and 10,000 runs (~10 min)
    python bench/planning.py --sizes 1000 --budget 20 # quick (~2 min)

For each size S, a project with one trivial template, one shared input file and a grid of S runs
(labels p0..p{S-1}) is planned and checked with the real Snakefile and its profile, interleaved
(order rotated each round) with a BARE SNAKEMAKE workflow of the same shape: one rule with
wildcards ``{notebook}``/``{label}``, the shared input (``ancient``), one output and one log per
job in the same folders, ``shell: "touch {output}"``, an ``all`` rule asking for the S targets.

  dry-run    ``snakemake -n`` with all S runs to do (nbsweep: no target exists; a dry-run
             plans, decides every run stale and writes its job files under the temp dir)
  no-op      ``snakemake --cores 2`` and ``-n`` when every target is up to date
  ratio      nbsweep / bare, median over rounds of the ratio within a round (target <= 1.2)

FAKED OUTPUTS: running 10,000 real notebooks takes hours, so the up-to-date state is faked: the
bench plans the sweep itself (``Sweep.load``) and writes each target as a copy of the template
stamped with the run's planned provenance (``nbsweep.provenance.records.stamp`` with
``state.planned``), exactly what the runner records. That is what makes a target current
for nbsweep (its record has the planned fingerprint; the run then has no job-file input, so
Snakemake finds it up to date too). The bench checks that ``snakemake -n`` then has nothing to
do. The bare workflow's no-op has its S outputs touched.

SCHEDULER: ``--scheduler`` only acts when jobs run, so greedy and the default (ilp) are compared
on runs that really execute, with a STUB RUNNER in place of the notebook (benchlib ``STUB_RUN``):
the targets are removed (all S runs stale) and the sweep runs from a copy of the checkout whose
``nbsweep/execution/job.py`` is the stub, which only puts the faked notebook back in place (no kernel, no
papermill). Everything else (Snakefile, rules, planning, profile) is nbsweep's own, so the time
per job is Snakemake's own per-job overhead for this DAG. The smallest size runs to completion;
bigger sizes run for ``--budget`` seconds, then Snakemake is stopped with SIGTERM and the rate is
taken from the targets' new mtimes (planning time excluded). ``--subsample N`` adds greedy with
``--scheduler-subsample N`` (only N randomly chosen ready jobs considered per scheduling round).

PROFILE: cProfile of the Snakefile parse alone (``snakemake --list-rules``: config load and
validation, expansion, template reads) and of a whole dry-run (all runs to do), at the biggest
size. It also counts template and input hashing calls: each template and input must be hashed
once per invocation, not once per run.

CHAIN (``--chain``): a pipeline of S runs (prep/base -> (S-2)/2 train runs each consuming prep's
output and writing one of their own -> as many evaluate runs consuming those -> compare/all with
``after: [evaluate]``; benchlib ``make_chain_project``) beside a flat sweep of S runs
(``make_sweep_project``), interleaved: ``snakemake -n`` with nothing executed (every run to do;
the templates never run) at each size of ``--sizes``, and the no-op at ``--chain-noop-size``
runs (default 100) where both projects are EXECUTED FOR REAL first (a pipeline's up-to-date state
records executions, upstream executions and output hashes: it is not faked). Ratios are
chain / flat; a cProfile of one chain dry-run at the biggest size, beside one of the flat sweep,
shows where the chain's extra planning time goes.
"""

import argparse
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

from nbsweep.provenance import state

OUTPUT_DIR = "papermill_outputs"
SNAKEFILE = bl.SNAKEFILE  # --checkout DIR measures DIR/Snakefile with DIR/nbsweep instead
ENV: dict | None = None

BARE_SNAKEFILE = """\
# The bare workflow of bench/planning.py: N trivial jobs of one rule with wildcards, nbsweep's shape.
N = {n}


rule all:
    input:
        expand("out/triv/p{x}/triv_p{x}.ipynb", x=range(N)),


rule run:
    input:
        ancient("data/shared.csv"),
    output:
        "out/{notebook}/{label}/{notebook}_{label}.ipynb",
    log:
        "out/{notebook}/{label}/{notebook}_{label}.log",
    shell:
        "touch {output} {log}"
"""

# ---------------------------------------------------------------- project states


def targets(project: Path, size: int) -> list[Path]:
    from nbsweep import layout

    return [project / layout.target(OUTPUT_DIR, bl.TEMPLATE_NAME, f"p{i}") for i in range(size)]


def fake_outputs(project: Path) -> tuple[int, float]:
    """Write every target as the runner would stamp it (see the module docstring)."""
    import copy

    import nbformat

    from nbsweep import layout
    from nbsweep.packaged import SCHEMA
    from nbsweep.provenance import records
    from nbsweep.provenance.sweep import Sweep

    start = time.perf_counter()
    here = Path.cwd()
    os.chdir(project)
    try:
        sweep = Sweep.load([Path("config/config.yaml")], SCHEMA)
        templates, digests, now = {}, {}, time.time()
        for run in sweep.runs.values():
            template = templates.setdefault(run.template.path, nbformat.read(run.template.path, as_version=4))
            nb = copy.deepcopy(template)
            records.stamp(nb, run.id, state.planned(run, digests), None)
            target = layout.target(sweep.output_dir, run.name, run.label)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = nbformat.writes(nb) + "\n"
            target.write_text(text, encoding="utf-8")
            (target.parent / ".bench-fake.ipynb").write_text(text, encoding="utf-8")  # what the stub runner copies
            os.utime(target, (now - 10, now - 10))
            assert records.recorded(target).fingerprint == state.planned(run, digests).fingerprint, target
    finally:
        os.chdir(here)
    return len(sweep.runs), time.perf_counter() - start


def make_all_stale(project: Path, size: int) -> float:
    """Remove every target (the stub runner puts each back); Snakemake's metadata goes too."""
    shutil.rmtree(project / ".snakemake" / "metadata", ignore_errors=True)
    for target in targets(project, size):
        target.unlink(missing_ok=True)
    return time.time() - 1


def make_bare_project(root: Path, size: int) -> Path:
    root.mkdir(parents=True)
    (root / "Snakefile").write_text(BARE_SNAKEFILE.replace("{n}", str(size)), encoding="utf-8")
    (root / "data").mkdir()
    (root / bl.SHARED_INPUT).write_text("a,b\n", encoding="utf-8")
    return root


def bare_outputs(root: Path, size: int, present: bool) -> None:
    for i in range(size):
        target = root / "out" / "triv" / f"p{i}" / f"triv_p{i}.ipynb"
        if present:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.unlink(missing_ok=True)


def planned_jobs(log: Path) -> dict[str, int]:
    """Rule -> job count from the first "Job stats:" table of a Snakemake log ({} = nothing to be done)."""
    counts, lines = {}, log.read_text(errors="replace").splitlines()
    try:
        start = lines.index("Job stats:") + 3
    except ValueError:
        return counts
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


# ---------------------------------------------------------------- measurements


def snake(project: Path, *args: str) -> list[str]:
    return bl.snakemake_cmd(project, *args, snakefile=SNAKEFILE)


def timed(project: Path, log: Path, *args: str) -> bl.Timing:
    log.unlink(missing_ok=True)
    return bl.run_timed(snake(project, *args), cwd=project, log=log, env=ENV)


def bare_timed(root: Path, size: int, log: Path, *args: str) -> bl.Timing:
    log.unlink(missing_ok=True)
    cmd = bl.snakemake_cmd(root, *args, snakefile=root / "Snakefile")
    return bl.run_timed(cmd, cwd=root, log=log, env=ENV)


def rerun_rate(project: Path, size: int, mark: float) -> tuple[int, float | None]:
    """How many targets were written after ``mark``, and the seconds per job between first and last."""
    times = sorted(t for t in (p.stat().st_mtime for p in targets(project, size) if p.exists()) if t > mark)
    if len(times) < 2:
        return len(times), None
    return len(times), (times[-1] - times[0]) / (len(times) - 1)


def scheduler_variants(subsample: int | None) -> dict[str, list[str]]:
    """Scheduler settings to compare: name -> Snakemake options."""
    none = ["--scheduler-subsample", "0"]  # 0 = all ready jobs, whatever the profile says
    variants = {"greedy": ["--scheduler", "greedy", *none], "ilp": ["--scheduler", "ilp", *none]}
    if subsample:
        variants[f"greedy, subsample {subsample}"] = ["--scheduler", "greedy", "--scheduler-subsample", str(subsample)]
    return variants


def run_scheduler(
    project: Path, size: int, scheduler: str, options: list[str], stub: Path, log: Path, budget: float | None, cores: int
) -> dict:
    mark = make_all_stale(project, size)
    env, tmpdir = bl.isolated_env(bl.checkout_env(stub))
    cmd = bl.snakemake_cmd(project, "--cores", str(cores), *options, snakefile=stub / "Snakefile")
    log.unlink(missing_ok=True)
    with open(log, "ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=project, stdout=out, stderr=subprocess.STDOUT, env=env)
        stopped = False
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # Snakemake: finish running jobs, then exit
            stopped = True
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wall = time.perf_counter() - start
    bl.release(tmpdir)
    if not stopped and proc.returncode != 0:
        raise SystemExit(f"bench: stub run with --scheduler {scheduler} failed ({proc.returncode}); see {log}")
    done, per_job = rerun_rate(project, size, mark)
    return {"scheduler": scheduler, "wall": wall, "done": done, "per_job": per_job, "complete": not stopped}


# ---------------------------------------------------------------- profile


def profile(project: Path, out: Path, *args: str) -> pstats.Stats:
    cmd = [bl.PYTHON, "-m", "cProfile", "-o", str(out), "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(project), *args]
    bl.run_timed(cmd, cwd=project, log=out.with_suffix(".log"), env=ENV)
    return pstats.Stats(str(out))


def ours(filename: str) -> bool:
    return "/nbsweep/" in filename or filename.endswith(".smk") or filename.endswith("Snakefile")


def short_name(filename: str) -> str:
    return filename.replace(str(SNAKEFILE.parent) + "/", "").split("site-packages/")[-1]


def stats_rows(stats: pstats.Stats, keep, key: str, limit: int) -> list[list]:
    rows = []
    entries = [(func, data) for func, data in stats.stats.items() if keep(func[0])]
    index = {"cum": 3, "tot": 2}[key]
    for (filename, line, name), (_cc, nc, tt, ct, _) in sorted(entries, key=lambda e: -e[1][index])[:limit]:
        rows.append([f"{short_name(filename)}:{line}({name})", nc, f"{tt:.3f}", f"{ct:.3f}"])
    return rows


def calls(stats: pstats.Stats, suffix: str, name: str) -> int:
    """Calls of the module-level function ``name`` (the first definition in the file: not a same-named property)."""
    found = sorted((line, data[1]) for (filename, line, fname), data in stats.stats.items() if filename.endswith(suffix) and fname == name)
    return found[0][1] if found else 0


def cumtime(stats: pstats.Stats, suffix: str, name: str) -> float:
    return sum(data[3] for (filename, _, fname), data in stats.stats.items() if filename.endswith(suffix) and fname == name)


def report_profile(title: str, stats: pstats.Stats, size: int) -> None:
    print(f"\n### {title}")
    total = max(data[3] for data in stats.stats.values())
    parse = cumtime(stats, "Snakefile", "<module>")
    print(f"total {total:.2f} s under cProfile; Snakefile parse (planning) {parse:.2f} s")
    print(
        f"hashing per invocation ({size} runs, 1 template, 1 input file): "
        f"templates.code_digest x{calls(stats, 'nbsweep/model/templates.py', 'code_digest')}, "
        f"templates.read_template x{calls(stats, 'nbsweep/model/templates.py', 'read_template')}, "
        f"file_digests.file_digest x{calls(stats, 'nbsweep/canonical.py', 'file_digest')}, "
        f"provenance.planned x{calls(stats, 'nbsweep/provenance/records.py', 'planned')} "
        "(a dry-run whose targets are all missing needs no fingerprint)"
    )
    print("\nnbsweep code by cumulative time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(stats, ours, "cum", 14)))
    print("\nall code by own time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(stats, lambda f: True, "tot", 12)))


# ---------------------------------------------------------------- chain vs flat


def run_jobs(log: Path) -> int:
    """How many run jobs (nbsweep_run and the runs' own rules) a Snakemake log's job stats list."""
    from nbsweep.model.rule_names import is_run_rule

    return sum(count for rule, count in planned_jobs(log).items() if is_run_rule(rule))


def executed_ok(log: Path) -> int:
    """How many runs nbsweep's console reported executed and ok (``nbsweep: run ID ok in ...``)."""
    return len(re.findall(r"^nbsweep: run \S+ ok in ", log.read_text(errors="replace"), flags=re.M))


def cores_of(args) -> list[str]:
    return ["--cores", str(args.cores)]


def chain_comparison(args, tmp: Path, raw: dict, rows: list) -> None:
    """Dry-run (all to do) at each size and no-op (executed for real) at ``--chain-noop-size``:
    chain / flat, interleaved (see the module docstring)."""
    cores = cores_of(args)

    def row(size, what, chain, flat):
        rows.append([
            size, what, f"{bl.median_wall(chain):.2f}", f"{bl.median_wall(flat):.2f}", f"{bl.paired_ratio(chain, flat):.2f}",
            f"{bl.median_cpu(chain):.2f}", f"{bl.median_cpu(flat):.2f}",
            f"{statistics.median(a.cpu / b.cpu for a, b in zip(chain, flat, strict=True)):.2f}", f"{max(t.maxrss_mb for t in chain):.0f}",
        ])  # fmt: skip

    def projects(size: int, what: str) -> tuple[Path, Path]:
        if size < 4 or size % 2:
            raise SystemExit(f"bench: a chain of {size} runs is not 1 + 2k + 1 runs; use an even size >= 4")
        return bl.make_chain_project(tmp / f"chain-{what}-{size}", size), bl.make_sweep_project(tmp / f"flat-{what}-{size}", size)

    for size in sorted(args.sizes):
        chain, flat = projects(size, "dry")
        r = raw[f"chain {size}"] = {}
        print(f"# S={size}: dry-run, nothing executed: chain vs flat", flush=True)
        r["dry"] = bl.interleaved(
            {
                "chain -n": lambda chain=chain, size=size: timed(chain, tmp / f"chain-dry-{size}.log", "-n", *cores),
                "flat -n": lambda flat=flat, size=size: timed(flat, tmp / f"flat-dry-{size}.log", "-n", *cores),
            },
            args.rounds,
        )
        for what in ("chain", "flat"):
            if (planned := run_jobs(tmp / f"{what}-dry-{size}.log")) != size:
                raise SystemExit(f"bench: the {what} dry-run planned {planned} runs, not {size}; see {tmp / f'{what}-dry-{size}.log'}")
        row(size, "dry-run, nothing executed (all to do)", r["dry"]["chain -n"], r["dry"]["flat -n"])

    size = args.chain_noop_size
    if size:
        chain, flat = projects(size, "noop")
        r = raw[f"chain {size}"] = {}
        print(f"# S={size}: executing both projects for real (not a measurement of planning)", flush=True)
        for what, project in (("chain", chain), ("flat", flat)):
            t = r[f"{what} execute"] = timed(project, tmp / f"{what}-execute-{size}.log", *cores)
            print(f"#   {what}: {size} runs executed in {t.wall:.1f} s", flush=True)
            if executed_ok(tmp / f"{what}-execute-{size}.log") != size:
                raise SystemExit(f"bench: the {what} project did not execute {size} runs; see {tmp / f'{what}-execute-{size}.log'}")
        print(f"# S={size}: no-op, every run executed and up to date: chain vs flat", flush=True)
        r["noop"] = bl.interleaved(
            {
                "chain no-op": lambda: timed(chain, tmp / f"chain-noop-{size}.log", *cores),
                "flat no-op": lambda: timed(flat, tmp / f"flat-noop-{size}.log", *cores),
                "chain no-op -n": lambda: timed(chain, tmp / f"chain-noop-dry-{size}.log", "-n", *cores),
                "flat no-op -n": lambda: timed(flat, tmp / f"flat-noop-dry-{size}.log", "-n", *cores),
            },
            args.rounds,
        )
        for log in ("chain-noop", "flat-noop", "chain-noop-dry", "flat-noop-dry"):
            if jobs := planned_jobs(tmp / f"{log}-{size}.log"):
                raise SystemExit(f"bench: the no-op planned jobs {jobs}; see {tmp / f'{log}-{size}.log'}")
        row(size, "no-op (executed for real; writes summary + index)", r["noop"]["chain no-op"], r["noop"]["flat no-op"])
        row(size, "no-op dry-run (-n, executed for real)", r["noop"]["chain no-op -n"], r["noop"]["flat no-op -n"])


def report_chain_profile(chain: pstats.Stats, flat: pstats.Stats, size: int) -> None:
    """Where a chain's dry-run spends its time, and what costs more than in a flat sweep."""
    print(f"\n### Profile: dry-run (snakemake -n, nothing executed) of a {size}-run chain beside a {size}-run flat sweep")
    for title, stats in (("chain", chain), ("flat", flat)):
        total = max(data[3] for data in stats.stats.values())
        parse = max(data[3] for (filename, _, name), data in stats.stats.items() if filename.endswith("Snakefile") and name == "<module>")
        print(f"{title}: total {total:.2f} s under cProfile; Snakefile parse (planning) {parse:.2f} s")
    print("\nchain, nbsweep code by cumulative time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(chain, ours, "cum", 14)))
    print("\nchain, all code by own time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(chain, lambda f: True, "tot", 14)))
    print_growth("chain minus flat, own time (where the extra time is spent):", chain, flat, lambda f: True, 2)
    print_growth("chain minus flat, cumulative time of nbsweep and Snakemake code (imports left out):", chain, flat, planning_code, 3)


def planning_code(func: tuple) -> bool:
    filename, _, name = func
    return name != "<module>" and (ours(filename) or "/snakemake/" in filename)


def print_growth(title: str, chain: pstats.Stats, flat: pstats.Stats, keep, index: int, limit: int = 14) -> None:
    """The functions whose time (``index`` 2: own, 3: cumulative) grew most from ``flat`` to ``chain``."""
    before = {func: data[index] for func, data in flat.stats.items()}
    grown = sorted(
        ((data[index] - before.get(func, 0.0), func, data) for func, data in chain.stats.items() if keep(func)), key=lambda e: -e[0]
    )
    print(f"\n{title}")
    rows = [
        [f"{short_name(f[0])}:{f[1]}({f[2]})", data[1], f"{data[index]:.3f}", f"{before.get(f, 0.0):.3f}", f"{extra:+.3f}"]
        for extra, f, data in grown[:limit]
    ]
    print(bl.table(["function", "chain calls", "chain s", "flat s", "difference s"], rows))


# ---------------------------------------------------------------- main


def main() -> int:
    global SNAKEFILE, ENV
    parser = argparse.ArgumentParser(description="Planning at scale: dry-run, no-op, scheduler, profile.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the dry-run and the no-op (default: 3)")
    parser.add_argument("--budget", type=float, default=60, help="seconds per stub run above the smallest size (default: 60)")
    parser.add_argument(
        "--complete-up-to", type=int, default=1000, help="run the stub sweeps to completion up to this size (default: 1000)"
    )
    parser.add_argument("--no-scheduler", action="store_true", help="skip the greedy vs ilp stub runs")
    parser.add_argument("--subsample", type=int, help="also run greedy with --scheduler-subsample N")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--dry-only", action="store_true", help="only the dry-run comparison (no faked outputs, no-op, scheduler)")
    parser.add_argument("--checkout", type=Path, help="measure another nbsweep checkout (DIR/Snakefile, DIR/nbsweep) instead of this one")
    parser.add_argument("--chain", action="store_true", help="a pipeline (prep -> train -> evaluate -> compare) vs a flat sweep instead")
    parser.add_argument(
        "--chain-noop-size",
        type=int,
        default=100,
        help="--chain: runs of the projects executed for real for the no-op (default: 100; 0 = skip)",
    )
    bl.add_common_options(parser, checkouts=False)
    args = parser.parse_args()
    if args.chain and "--sizes" not in sys.argv:
        args.sizes = [1000]
    sizes = sorted(args.sizes)
    if args.checkout:
        checkout = args.checkout.resolve()
        if not (checkout / "Snakefile").is_file() or not (checkout / "nbsweep").is_dir():
            parser.error(f"--checkout {checkout}: expected DIR/Snakefile and DIR/nbsweep/")
        SNAKEFILE = checkout / "Snakefile"
        sys.path.insert(0, str(checkout))  # fake_outputs() and the stub use the same package

    raw: dict = {}
    rows, sched_rows = [], []
    with bl.workspace("Planning at scale", "planning", args) as (facts, tmp):
        if args.checkout:
            print(f"# checkout measured: {SNAKEFILE.parent}", flush=True)
            ENV = bl.checkout_env(SNAKEFILE.parent)
        # Snakemake's own floor: start, parse a one-rule Snakefile, nothing to do.
        floor_dir = tmp / "floor"
        floor_dir.mkdir()
        (floor_dir / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n', encoding="utf-8")
        (floor_dir / "x").write_text("")
        floor = bl.run_timed(bl.snakemake_cmd(floor_dir, "-n", snakefile=floor_dir / "Snakefile"), cwd=floor_dir, log=tmp / "floor.log")
        print(f"# Snakemake floor (one-rule Snakefile, -n, nothing to do): {floor.wall:.2f} s, {floor.maxrss_mb:.0f} MB", flush=True)
        rows.append(
            [
                "-",
                "snakemake floor: one-rule workflow -n",
                f"{floor.wall:.2f}",
                "-",
                "-",
                f"{floor.cpu:.2f}",
                "-",
                "-",
                f"{floor.maxrss_mb:.0f}",
                "-",
            ]
        )

        if args.chain:
            chain_comparison(args, tmp, raw, rows)
            print()
            headers = [
                "runs",
                "what",
                "chain wall s",
                "flat wall s",
                "wall ratio",
                "chain CPU s",
                "flat CPU s",
                "CPU ratio",
                "chain peak RSS MB",
            ]
            print(bl.table(headers, rows[1:]))
            print(f"Snakemake floor (one-rule workflow, -n): {floor.wall:.2f} s wall, {floor.cpu:.2f} s CPU")
            print("ratios: median over rounds of chain / flat within a round (CPU: user + sys, steadier on a shared machine)")
            if not args.no_profile:
                big = sizes[-1]
                chain = profile(tmp / f"chain-dry-{big}", tmp / f"chain-dry-{big}.prof", "-n", *cores_of(args))
                flat = profile(tmp / f"flat-dry-{big}", tmp / f"flat-dry-{big}.prof", "-n", *cores_of(args))
                report_chain_profile(chain, flat, big)
            bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": raw, "floor": floor})
            return 0

        stub = bl.make_stub(SNAKEFILE.parent, tmp)
        cores = ["--cores", str(args.cores)]
        for size in sizes:
            project = bl.make_sweep_project(tmp / f"sweep-{size}", size)
            bare = make_bare_project(tmp / f"bare-{size}", size)
            r = raw[size] = {}

            def row(what, ours, theirs, target=1.2, size=size):
                ratio = bl.paired_ratio(ours, theirs)
                cpu_ratio = statistics.median(a.cpu / b.cpu for a, b in zip(ours, theirs, strict=True))
                ok = "-" if target is None else "ok" if max(ratio, cpu_ratio) <= target else "MISS"
                rows.append([
                    size, what, f"{bl.median_wall(ours):.2f}", f"{bl.median_wall(theirs):.2f}", f"{ratio:.2f}",
                    f"{bl.median_cpu(ours):.2f}", f"{bl.median_cpu(theirs):.2f}", f"{cpu_ratio:.2f}", f"{max(t.maxrss_mb for t in ours):.0f}", ok,
                ])  # fmt: skip

            print(f"# S={size}: dry-run, all runs to do: nbsweep vs bare Snakemake", flush=True)
            r["dry"] = bl.interleaved(
                {
                    "nbsweep -n": lambda project=project, size=size: timed(project, tmp / f"dry-{size}.log", "-n", *cores),
                    "bare -n": lambda bare=bare, size=size: bare_timed(bare, size, tmp / f"bare-dry-{size}.log", "-n", *cores),
                },
                args.rounds,
            )
            if planned_jobs(tmp / f"dry-{size}.log").get("nbsweep_run") != size:
                raise SystemExit(f"bench: the dry-run did not plan {size} runs; see {tmp / f'dry-{size}.log'}")
            row("dry-run, all to do", r["dry"]["nbsweep -n"], r["dry"]["bare -n"])
            if args.dry_only:
                continue

            count, seconds = fake_outputs(project)
            bare_outputs(bare, size, present=True)
            print(f"# S={size}: faked {count} up-to-date targets in {seconds:.1f} s (not a measurement)", flush=True)
            check = tmp / f"noop-check-{size}.log"
            timed(project, check, "-n", *cores)
            if "nbsweep_run" in planned_jobs(check):
                raise SystemExit(f"bench: faked outputs are not up to date; see {check}")
            # The first real invocation with every target present writes summary.csv and index.html
            # (as every invocation does); timed apart from the no-op proper.
            r["settle"] = timed(project, tmp / f"settle-{size}.log", *cores)
            if "nbsweep_run" in planned_jobs(tmp / f"settle-{size}.log"):
                raise SystemExit(f"bench: faked outputs were re-run; see {tmp / f'settle-{size}.log'}")
            r["noop"] = bl.interleaved(
                {
                    "nbsweep no-op": lambda project=project, size=size: timed(project, tmp / f"noop-{size}.log", *cores),
                    "bare no-op": lambda bare=bare, size=size: bare_timed(bare, size, tmp / f"bare-noop-{size}.log", *cores),
                    "nbsweep no-op -n": lambda project=project, size=size: timed(project, tmp / f"noop-dry-{size}.log", "-n", *cores),
                    "bare no-op -n": lambda bare=bare, size=size: bare_timed(bare, size, tmp / f"bare-noop-dry-{size}.log", "-n", *cores),
                },
                args.rounds,
            )
            if jobs := planned_jobs(tmp / f"noop-{size}.log"):
                raise SystemExit(f"bench: the no-op re-check ran jobs {jobs}; see {tmp / f'noop-{size}.log'}")
            row("no-op (all up to date; nbsweep writes summary + index)", r["noop"]["nbsweep no-op"], r["noop"]["bare no-op"], target=None)
            row("no-op dry-run (-n, all up to date)", r["noop"]["nbsweep no-op -n"], r["noop"]["bare no-op -n"], target=None)

            if not args.no_scheduler:
                complete = size <= args.complete_up_to
                budget = None if complete else args.budget
                print(f"# S={size}: stub runs, greedy vs ilp ({'to completion' if complete else f'{budget:.0f} s each'})", flush=True)
                r["sched"] = {}
                variants = scheduler_variants(args.subsample)
                for scheduler in list(variants) if size % 2 == 0 else list(reversed(variants)):
                    log = tmp / f"stub-{scheduler.replace(', ', '-').replace(' ', '')}-{size}.log"
                    res = run_scheduler(project, size, scheduler, variants[scheduler], stub, log, budget, args.cores)
                    r["sched"][scheduler] = res
                    per = f"{res['per_job'] * 1000:.0f}" if res["per_job"] else "-"
                    print(f"#   {scheduler}: {res['done']} jobs in {res['wall']:.1f} s, {per} ms/job", flush=True)
                greedy = r["sched"]["greedy"]["per_job"]
                for scheduler in variants:
                    res = r["sched"][scheduler]
                    sched_rows.append(
                        [
                            size,
                            res["scheduler"],
                            "run to completion" if res["complete"] else f"stopped after {res['wall']:.0f} s",
                            res["done"],
                            f"{res['wall']:.1f}" if res["complete"] else "-",
                            f"{res['per_job'] * 1000:.0f}" if res["per_job"] else "-",
                            f"{res['per_job'] / greedy:.2f}" if greedy and res["per_job"] else "-",
                        ]
                    )
                fake_outputs(project)  # every target back in place for the profile's parse

        print()
        headers = [
            "runs",
            "what",
            "nbsweep wall s",
            "bare wall s",
            "wall ratio",
            "nbsweep CPU s",
            "bare CPU s",
            "CPU ratio",
            "peak RSS MB",
            "<= 1.2",
        ]
        print(bl.table(headers, rows))
        print(
            "ratios: median over rounds of nbsweep / bare within a round (CPU: user + sys, steadier on a shared machine); target: dry-run"
        )
        if sched_rows:
            print("\nScheduler (stub runner: Snakemake's own per-job cost for this DAG; see the module docstring)")
            print(bl.table(["runs", "scheduler", "how", "jobs done", "wall s", "ms / job", "x greedy"], sched_rows))

        if not args.no_profile and not args.dry_only:
            big = sizes[-1]
            parse = profile(tmp / f"sweep-{big}", tmp / f"parse-{big}.prof", "--list-rules")
            report_profile(f"Profile: Snakefile parse only (snakemake --list-rules), {big} runs", parse, big)
            make_all_stale(tmp / f"sweep-{big}", big)
            dry = profile(tmp / f"sweep-{big}", tmp / f"dry-{big}.prof", "-n", *cores)
            report_profile(f"Profile: whole dry-run (snakemake -n, all {big} runs to do)", dry, big)
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": raw, "floor": floor})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
