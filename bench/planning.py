"""Planning at scale: dry-run, no-op re-check, scheduler choice and a profile of the planning.

    python bench/planning.py                          # 1,000 and 10,000 runs (~6 min)
    python bench/planning.py --sizes 1000 --budget 20 # quick (~1 min)

For each size S, a project with one trivial template, one shared input file and a grid of S runs
(labels p0..p{S-1}) is planned and checked with the real Snakefile and its profile:

  dry-run, cold   ``snakemake -n`` on a fresh project: plans, writes S job files, builds the DAG
                  and prints S jobs
  dry-run, warm   the same again (job files exist and are unchanged)
  no-op           ``snakemake --cores 2`` when every target is up to date; also ``-n`` then

FAKED OUTPUTS: running 10,000 real notebooks takes hours, so the up-to-date state is faked. After
the dry-run has synced the job files, each target is written as a copy of the template carrying
the metadata the runner records (``nbsweep.run.record``: the run's fingerprint, parameters,
inputs, status "ok"), dated after its job file. That is exactly what makes a target up to date
for Snakemake (target newer than its job file; data inputs are ``ancient``) and for nbsweep (the
recorded fingerprint equals the job file's). The bench checks that ``snakemake -n`` then has
nothing to do.

SCHEDULER: ``--scheduler`` only acts when jobs run, so greedy and the default (ilp) are compared
on runs that really execute, with a STUB RUNNER in place of the notebook: the job files are
dated after the targets (all S runs stale) and the sweep runs from a copy of the checkout whose
``nbsweep/run.py`` is a stub that only puts the faked notebook back in place (no kernel, no
papermill). Everything else (Snakefile, rules, planning, profile) is nbsweep's own, so the time
per job is Snakemake's own per-job overhead for this DAG. The smallest size runs to completion;
bigger sizes run for ``--budget`` seconds, then Snakemake is stopped with SIGTERM and the rate is
taken from the targets' new mtimes (planning time excluded). ``--subsample N`` adds greedy with
``--scheduler-subsample N`` (only N randomly chosen ready jobs considered per scheduling round).

PROFILE: cProfile of the Snakefile parse alone (``snakemake --list-rules``: config load and
validation, expansion, template and input hashing, job file sync) at the biggest size, and of a
whole dry-run at the smallest size. It also counts template and input hashing calls: each
template must be hashed once per invocation, not once per run.
"""

import argparse
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

OUTPUT_DIR = "papermill_outputs"
SNAKEFILE = bl.SNAKEFILE  # --checkout DIR measures DIR/Snakefile with DIR/nbsweep instead
ENV: dict | None = None
INPUT_FILE = "data/shared.csv"

STUB_RUN = '''\
"""Stub runner made by bench/planning.py: puts the faked notebook in place; no kernel, no papermill."""
import os, shutil, sys
job_file, target, log = sys.argv[1:4]
shutil.copyfile(os.path.join(os.path.dirname(target), ".bench-fake.ipynb"), target)
with open(log, "w") as fh:
    fh.write("stub runner\\n")
'''


# ---------------------------------------------------------------- project states


def make_planning_project(root: Path, size: int) -> Path:
    bl.make_project(root, size)
    (root / "data").mkdir(exist_ok=True)
    (root / INPUT_FILE).write_text("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(1000)), encoding="utf-8")
    config = root / "config" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + f"    inputs: [{INPUT_FILE}]\n", encoding="utf-8")
    return root


def job_files(project: Path) -> list[Path]:
    return sorted((project / OUTPUT_DIR).glob("*/*/.nbsweep-job.json"))


def fake_outputs(project: Path) -> tuple[int, float]:
    """Write every target as the runner would record it (see the module docstring)."""
    import copy

    import nbformat

    from nbsweep import layout
    from nbsweep.canonical import fingerprint
    try:  # the runner module: where record() lives (nbsweep.run, or nbsweep.execute since the split)
        from nbsweep.execute import record
    except ImportError:
        from nbsweep.run import record
    from nbsweep.templates import code_digest

    start = time.perf_counter()
    templates: dict[str, tuple] = {}
    files = job_files(project)
    for job_file in files:
        job = json.loads(job_file.read_text(encoding="utf-8"))
        if job["notebook"] not in templates:
            nb = nbformat.read(project / job["notebook"], as_version=4)
            templates[job["notebook"]] = (nb, code_digest(nb))
        template, actual_code = templates[job["notebook"]]
        nb = copy.deepcopy(template)
        record(nb, job, actual_code, None)
        assert nb.metadata["nbsweep"]["fingerprint"] == job["fingerprint"] == fingerprint(job), job_file
        name, label = job["run"].split("/", 1)
        target = project / layout.target(OUTPUT_DIR, name, label)
        assert target.parent == job_file.parent, (target, job_file)
        text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")
        (target.parent / ".bench-fake.ipynb").write_text(text, encoding="utf-8")  # what the stub runner copies
    # Job files 20 s old, targets 10 s old: in order whatever the file system's resolution, and never
    # in the future (a target the stub re-dates must end up newer than its job file).
    now = time.time()
    for job_file in files:
        os.utime(job_file, (now - 20, now - 20))
        os.utime(target_of(job_file), (now - 10, now - 10))
    return len(files), time.perf_counter() - start


def target_of(job_file: Path) -> Path:
    return next(p for p in job_file.parent.glob("*.ipynb") if not p.name.startswith(".") and ".failed." not in p.name)


def make_all_stale(project: Path) -> float:
    """Date each target 10 s before its job file (now - 5 s); the stub re-dates targets to now.

    Snakemake ignores a newer input whose checksum it recorded unchanged (it stores checksums of
    small inputs in .snakemake/metadata), so that record is dropped first.
    """
    shutil.rmtree(project / ".snakemake" / "metadata", ignore_errors=True)
    now = time.time()
    for job_file in job_files(project):
        os.utime(job_file, (now - 5, now - 5))
        os.utime(target_of(job_file), (now - 15, now - 15))
    return now - 1


def make_stub(tmp: Path) -> Path:
    """A copy of the measured checkout whose ``nbsweep/run.py`` is the stub runner.

    Jobs put the workflow's own directory first on PYTHONPATH, so the stub must live in the
    workflow that Snakemake runs: everything else in the copy is the checkout's own.
    """
    source = SNAKEFILE.parent
    stub = tmp / "stub-checkout"
    ignore = shutil.ignore_patterns(".git", ".snakemake", OUTPUT_DIR, "__pycache__", "*.egg-info", "tests", "bench", "docs", ".pytest_cache")
    shutil.copytree(source, stub, ignore=ignore, symlinks=True)
    (stub / "nbsweep" / "run.py").write_text(STUB_RUN, encoding="utf-8")
    return stub


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


def rerun_rate(project: Path, mark: float) -> tuple[int, float | None]:
    """How many targets were re-dated after ``mark``, and the seconds per job between first and last."""
    times = sorted(t for t in (target_of(f).stat().st_mtime for f in job_files(project)) if t > mark)
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


def run_scheduler(project: Path, scheduler: str, options: list[str], stub: Path, log: Path, budget: float | None, cores: int) -> dict:
    mark = make_all_stale(project)
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
    done, per_job = rerun_rate(project, mark)
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
    for (filename, line, name), (cc, nc, tt, ct, _) in sorted(entries, key=lambda e: -e[1][index])[:limit]:
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
        f"templates.code_digest x{calls(stats, 'nbsweep/templates.py', 'code_digest')}, "
        f"templates.read_template x{calls(stats, 'nbsweep/templates.py', 'read_template')}, "
        f"canonical.file_digest x{calls(stats, 'nbsweep/canonical.py', 'file_digest')}, "
        f"canonical.fingerprint x{calls(stats, 'nbsweep/canonical.py', 'fingerprint')}"
    )
    print("\nnbsweep code by cumulative time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(stats, ours, "cum", 14)))
    print("\nall code by own time:")
    print(bl.table(["function", "calls", "own s", "cum s"], stats_rows(stats, lambda f: True, "tot", 12)))


# ---------------------------------------------------------------- main


def main() -> int:
    global SNAKEFILE, ENV
    parser = argparse.ArgumentParser(description="Planning at scale: dry-run, no-op, scheduler, profile.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="repetitions of the warm dry-run and the no-op (default: 2)")
    parser.add_argument("--budget", type=float, default=60, help="seconds per stub run above the smallest size (default: 60)")
    parser.add_argument("--complete-up-to", type=int, default=1000, help="run the stub sweeps to completion up to this size (default: 1000)")
    parser.add_argument("--no-scheduler", action="store_true", help="skip the greedy vs ilp stub runs")
    parser.add_argument("--subsample", type=int, help="also run greedy with --scheduler-subsample N")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--checkout", type=Path, help="measure another nbsweep checkout (DIR/Snakefile, DIR/nbsweep) instead of this one")
    bl.add_common_options(parser, checkouts=False)
    args = parser.parse_args()
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
        rows.append(["-", "snakemake floor: one-rule workflow -n", f"{floor.wall:.2f}", f"{floor.maxrss_mb:.0f}", "-"])

        stub = make_stub(tmp)
        for size in sizes:
            project = make_planning_project(tmp / f"sweep-{size}", size)
            r = raw[size] = {}
            target = 3 if size <= 1000 else 20 if size <= 10000 else None

            def row(what, t, target=target):
                ok = "-" if target is None else ("ok" if t.wall < target and t.maxrss_mb < 500 else "MISS")
                rows.append([size, what, f"{t.wall:.2f}", f"{t.maxrss_mb:.0f}", ok])

            print(f"# S={size}: dry-run, cold", flush=True)
            r["dry_cold"] = timed(project, tmp / f"dry-cold-{size}.log", "-n", "--cores", str(args.cores))
            row("dry-run, cold (writes job files)", r["dry_cold"])
            assert len(job_files(project)) == size, f"expected {size} job files"
            r["dry_warm"] = []
            for i in range(args.rounds):
                r["dry_warm"].append(timed(project, tmp / f"dry-warm-{size}.log", "-n", "--cores", str(args.cores)))
                print(f"#   dry-run, warm {r['dry_warm'][-1].wall:.2f} s", flush=True)
            row("dry-run, warm", min(r["dry_warm"], key=lambda t: t.wall))

            count, seconds = fake_outputs(project)
            print(f"# S={size}: faked {count} up-to-date targets in {seconds:.1f} s (not a measurement)", flush=True)
            check = tmp / f"noop-check-{size}.log"
            timed(project, check, "-n", "--cores", str(args.cores))
            if "nbsweep_run" in planned_jobs(check):
                raise SystemExit(f"bench: faked outputs are not up to date; see {check}")
            # The first real invocation with every target present may still run result jobs
            # (summary, index) once; it is timed apart from the no-op proper.
            r["settle"] = timed(project, tmp / f"settle-{size}.log", "--cores", str(args.cores))
            settle_jobs = planned_jobs(tmp / f"settle-{size}.log")
            if "nbsweep_run" in settle_jobs:
                raise SystemExit(f"bench: faked outputs were re-run; see {tmp / f'settle-{size}.log'}")
            if settle_jobs:
                row(f"first run after outputs exist ({', '.join(settle_jobs)})", r["settle"], target=None)
            r["noop_dry"] = []
            r["noop"] = []
            for i in range(args.rounds):
                r["noop"].append(timed(project, tmp / f"noop-{size}.log", "--cores", str(args.cores)))
                r["noop_dry"].append(timed(project, tmp / f"noop-dry-{size}.log", "-n", "--cores", str(args.cores)))
                print(f"#   no-op {r['noop'][-1].wall:.2f} s; no-op -n {r['noop_dry'][-1].wall:.2f} s", flush=True)
            if jobs := planned_jobs(tmp / f"noop-{size}.log"):
                raise SystemExit(f"bench: the no-op re-check ran jobs {jobs}; see {tmp / f'noop-{size}.log'}")
            row("no-op re-check (all up to date)", min(r["noop"], key=lambda t: t.wall))
            row("no-op dry-run (-n, all up to date)", min(r["noop_dry"], key=lambda t: t.wall))

            if not args.no_scheduler:
                complete = size <= args.complete_up_to
                budget = None if complete else args.budget
                print(f"# S={size}: stub runs, greedy vs ilp ({'to completion' if complete else f'{budget:.0f} s each'})", flush=True)
                r["sched"] = {}
                variants = scheduler_variants(args.subsample)
                for scheduler in list(variants) if size % 2 == 0 else list(reversed(variants)):
                    log = tmp / f"stub-{scheduler.replace(', ', '-').replace(' ', '')}-{size}.log"
                    res = run_scheduler(project, scheduler, variants[scheduler], stub, log, budget, args.cores)
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
                if complete:
                    # Now every run was (stub-)executed by Snakemake: its metadata exists, as after a real sweep.
                    r["noop_meta"] = []
                    for i in range(args.rounds):
                        r["noop_meta"].append(timed(project, tmp / f"noop-meta-{size}.log", "--cores", str(args.cores)))
                        print(f"#   no-op after a complete run {r['noop_meta'][-1].wall:.2f} s", flush=True)
                    if jobs := planned_jobs(tmp / f"noop-meta-{size}.log"):
                        raise SystemExit(f"bench: the no-op re-check ran jobs {jobs}; see {tmp / f'noop-meta-{size}.log'}")
                    row("no-op re-check, Snakemake metadata present", min(r["noop_meta"], key=lambda t: t.wall))

        print()
        print(bl.table(["runs", "what", "wall s", "peak RSS MB", "target"], rows))
        print("targets: 1,000 runs < 3 s, 10,000 runs < 20 s, always < 500 MB")
        if sched_rows:
            print("\nScheduler (stub runner: Snakemake's own per-job cost for this DAG; see the module docstring)")
            print(bl.table(["runs", "scheduler", "how", "jobs done", "wall s", "ms / job", "x greedy"], sched_rows))

        if not args.no_profile:
            big, small = sizes[-1], sizes[0]
            parse = profile(tmp / f"sweep-{big}", tmp / f"parse-{big}.prof", "--list-rules")
            report_profile(f"Profile: Snakefile parse only (snakemake --list-rules), {big} runs", parse, big)
            make_all_stale(tmp / f"sweep-{small}")
            dry = profile(tmp / f"sweep-{small}", tmp / f"dry-{small}.prof", "-n", "--cores", str(args.cores))
            report_profile(f"Profile: whole dry-run (snakemake -n, all {small} runs to do)", dry, small)
        bl.save_json(args.json, {"facts": facts, "args": vars(args), "results": raw, "floor": floor})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
