"""Sweeps on a real one-node SLURM cluster through profiles/slurm and profiles/cluster-generic.

`.ci/slurm-cluster.sh up` starts munged, slurmctld and slurmd on localhost (Debian slurm-wlm;
needs root) and `down` stops them again. Without SLURM or root the module is skipped. Each
profile drives one small sweep, started together so their waits for SLURM overlap:

* a batch of runs (batch_size 3) that must arrive as ceil(5/3) SLURM jobs, not 5;
* a run that raises, which must be reported failed while the others finish;
* (slurm) a run with its own threads, mem_mb, runtime, partition and account, which must reach
  sbatch, checked with `scontrol show job` (no accounting daemon needed).

A 4-stage pipeline (slow tests, through profiles/cluster-generic: its status checks can come
every second, the plugin's back off by 10 s a round and would make each stage ~15 s) and a branch
switch with a run cache in a shared folder (profiles/slurm) run at the same time as the two
sweeps: most of every invocation is spent waiting for status checks.

Every notebook prints the SLURM job id it ran under, so the tests see which job executed it.

The SLURM plugin (nbsweep's `slurm` extra) is installed by this module into an environment of its
own layered over the test environment, not by the test extra: Snakemake imports every installed
executor plugin as it starts, and this one imports pandas (~0.4 s of CPU), which every other
test's Snakemake would pay.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import requires
from pathlib import Path

import pytest
from conftest import REPO, SNAKEFILE, Project, stdout_of

from e2e.test_cache import clone
from nbsweep import layout

CLUSTER_SCRIPT = REPO / ".ci" / "slurm-cluster.sh"
SBIN_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
SWEEP_TIMEOUT = 300  # seconds for one snakemake invocation; a healthy one takes well under 60
COMMAND_TIMEOUT = 30
BATCHED = [1, 2, 3, 4, 5]
# Status by squeue, checked early and without retries (the plugin backs off polling by 10 s a round).
# A job takes a few seconds, so the second check, 2 + 12 s after a submission, mostly finds it done.
SLURM_OPTIONS = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2", "--retries", "0")
SUBMITTED = r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)"
GENERIC_OPTIONS = ("--seconds-between-status-checks", "1")
GENERIC_SUBMITTED = r"Submitted (?:group job|job) \S+ with external jobid '(\d+)'"
BATCH_SIZE = 3


def skip_reason() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to start a one-node SLURM cluster (munged, slurmctld, slurmd)"
    needed = ("sbatch", "squeue", "scontrol", "scancel", "slurmctld", "slurmd", "munged")
    missing = [cmd for cmd in needed if not shutil.which(cmd, path=SBIN_PATH)]
    if missing:
        return f"SLURM is not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
    return None


pytestmark = [
    pytest.mark.xdist_group("slurm"),  # one worker brings the cluster up once for all of them
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
    pytest.mark.timeout(2 * SWEEP_TIMEOUT + 120),
]


def command(*args: str, timeout: float = COMMAND_TIMEOUT) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=True)
    return out.stdout


EXECUTORS: list[Path] = []  # the Python of `install_executors`, once the cluster fixture made it


def install_executors(root: Path) -> Path:
    """A Python whose environment is the test environment plus the executor plugins of nbsweep's
    `slurm` and `cluster-generic` extras (pip installs what the test environment lacks: it sees
    that environment's packages as installed)."""
    venv = root / "executors"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=COMMAND_TIMEOUT)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    )
    # The test environment after the venv's own packages (its .pth files too: nbsweep's editable install).
    Path(site.stdout.strip(), "test-environment.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    wanted = [spec.split(";")[0] for spec in requires("nbsweep") or [] if re.search(r"extra == .(slurm|cluster-generic).", spec)]
    assert len(wanted) == 2, requires("nbsweep")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check", *wanted]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"could not install the executor plugins ({' '.join(wanted)}): {installed.stderr.strip()[-500:]}")
    return python


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The one-node cluster, and a Python with the executor plugins (installed while the cluster
    starts); yields the node's CPU count. Stopped again after the module."""
    owner = ["--owner", str(os.getpid())]
    with ThreadPoolExecutor(1) as pool:
        installing = pool.submit(install_executors, tmp_path_factory.mktemp("cluster"))
        up = subprocess.run([str(CLUSTER_SCRIPT), "up", *owner], capture_output=True, text=True, timeout=180)
    if up.returncode == 2:
        pytest.skip(f"one-node SLURM cluster unavailable: {up.stderr.strip()}")
    assert up.returncode == 0, f"{CLUSTER_SCRIPT} up failed:\n{up.stdout}\n{up.stderr}"
    try:
        EXECUTORS[:] = [installing.result()]
        yield int(command("sinfo", "--noheader", "--format=%c").split()[0])
    finally:
        down = subprocess.run([str(CLUSTER_SCRIPT), "down", *owner], capture_output=True, text=True, timeout=180)
        assert down.returncode == 0, f"{CLUSTER_SCRIPT} down failed:\n{down.stdout}\n{down.stderr}"


def snakemake(*args: str) -> list[str]:
    """A Snakemake command line of the Python that has the executor plugins."""
    return [str(EXECUTORS[0]), "-m", "snakemake", "-s", str(SNAKEFILE), *args]


TEMPLATE_CODE = [
    "import os\nprint('SLURM_JOB_ID', os.environ.get('SLURM_JOB_ID'))",
    "if fail:\n    raise ValueError('deliberate failure')\nprint('result', x * 2)",
]


def make_project(root: Path, extra_runs: list[dict]) -> Project:
    project = Project(root)
    project.notebook("tiny", TEMPLATE_CODE, "x = 1\nfail = False")
    project.write_config(
        {
            "defaults": {"kernel": "python3", "timeout": 120, "resources": {"mem_mb": 300, "runtime": 5}},
            "runs": [
                {"notebook": "notebooks/tiny.ipynb", "label": "x{x}", "grid": {"x": BATCHED}, "batch_size": BATCH_SIZE},
                {"notebook": "notebooks/tiny.ipynb", "label": "boom", "parameters": {"fail": True}},
                *extra_runs,
            ],
        }
    )
    return project


@dataclass
class Sweep:
    project: Project
    proc: subprocess.CompletedProcess
    submissions: list[tuple[str, str]]  # (SLURM job id, what the executor logged about it)

    @property
    def log(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def slurm_job_of(self, label: str) -> str:
        """The SLURM job id a run's notebook printed (it ran inside that job)."""
        match = re.search(r"SLURM_JOB_ID (\S+)", stdout_of(self.project.target("tiny", label)))
        assert match, f"tiny/{label} printed no SLURM job id"
        return match.group(1)

    def job_ids(self) -> list[str]:
        return [jobid for jobid, _ in self.submissions]


def start(project: Project, profile: str, *args: str) -> subprocess.Popen:
    """An invocation in the background. Its output goes to temporary files, not pipes: one left
    running while another is awaited must never block on a full pipe."""
    cmd = snakemake("-d", str(project.root), "--profile", str(REPO / "profiles" / profile), *args)
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    popen = subprocess.Popen(cmd, cwd=project.root, env=project.env, stdout=out, stderr=err, text=True)
    popen.outputs = (out, err)
    return popen


def read_back(stream) -> str:
    """All a temporary file holds; closes it."""
    with stream:
        stream.seek(0)
        return stream.read()


def finish(popen: subprocess.Popen) -> subprocess.CompletedProcess:
    timed_out = False
    try:
        popen.wait(timeout=SWEEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
        popen.kill()
        popen.wait(timeout=COMMAND_TIMEOUT)
    out, err = (read_back(stream) for stream in popen.outputs)
    if timed_out:
        raise AssertionError(f"snakemake did not finish within {SWEEP_TIMEOUT} s:\n{out[-3000:]}\n{err[-6000:]}")
    return subprocess.CompletedProcess(popen.args, popen.returncode, out, err)


@pytest.fixture(scope="module")
def background(cluster, tmp_path_factory):
    """Both sweeps and the branch switch, started together; `sweeps` and `branch_switch` wait for
    them, and the chain runs meanwhile: most of each invocation is waiting for status checks."""
    threads = min(2, cluster)
    sized = {
        "notebook": "notebooks/tiny.ipynb",
        "label": "sized",
        "threads": threads,
        "resources": {"mem_mb": 600, "runtime": 7, "slurm_partition": "short", "slurm_account": "nbsweep-ci"},
    }
    slurm = make_project(tmp_path_factory.mktemp("slurm"), [sized])
    generic = make_project(tmp_path_factory.mktemp("generic"), [])
    # --cores caps each run's threads and a batch's CPUs (see docs/cluster.md): the largest
    # `threads` of any run. No slurmdbd here, so job states come from squeue, polled quickly.
    running = {
        "slurm": (slurm, start(slurm, "slurm", "--cores", str(threads), *SLURM_OPTIONS)),
        "generic": (generic, start(generic, "cluster-generic", "--cores", "1", *GENERIC_OPTIONS)),
    }
    with ThreadPoolExecutor(1) as pool:
        branch = pool.submit(switch_branches, tmp_path_factory)
        try:
            yield {"sweeps": running, "branch": branch}
        finally:
            for _, popen in running.values():
                stop(popen)


def stop(popen: subprocess.Popen) -> None:
    """Kill an invocation a failed test left running."""
    if popen.poll() is None:
        popen.kill()
        popen.wait(timeout=COMMAND_TIMEOUT)


def run_slurm(project: Project) -> Sweep:
    """One invocation through profiles/slurm, to the end."""
    popen = start(project, "slurm", "--cores", "1", *SLURM_OPTIONS)
    try:
        return swept(project, "slurm", finish(popen))
    finally:
        stop(popen)


def run_generic(project: Project) -> Sweep:
    """One invocation through profiles/cluster-generic, to the end."""
    popen = start(project, "cluster-generic", "--cores", "1", *GENERIC_OPTIONS)
    try:
        return swept(project, "generic", finish(popen))
    finally:
        stop(popen)


def swept(project: Project, name: str, proc: subprocess.CompletedProcess) -> Sweep:
    """A finished invocation and the SLURM jobs it submitted, with their logs (submit.py names them by job id)."""
    if name == "slurm":
        return Sweep(project, proc, re.findall(SUBMITTED, proc.stderr))
    logs = project.root / ".snakemake" / "cluster-generic_logs"
    return Sweep(project, proc, [(jobid, str(logs / f"{jobid}.log")) for jobid in re.findall(GENERIC_SUBMITTED, proc.stderr)])


@pytest.fixture(scope="module")
def sweeps(background) -> dict[str, Sweep]:
    """Both sweeps, finished."""
    return {name: swept(project, name, finish(popen)) for name, (project, popen) in background["sweeps"].items()}


def scontrol_job(jobid: str) -> dict[str, str]:
    """`scontrol show job` as a dict; slurmctld keeps finished jobs for MinJobAge (600 s)."""
    text = command("scontrol", "--oneliner", "show", "job", jobid)
    return dict(re.findall(r"(\S+?)=(\S*)", text))


PROFILES = ["slurm", "generic"]
RETRIES = {"slurm": 0, "generic": 1}


@pytest.mark.parametrize("name", PROFILES)
def test_runs_execute_inside_slurm_jobs(sweeps, name):
    sweep = sweeps[name]
    labels = [f"x{x}" for x in BATCHED] + (["sized"] if name == "slurm" else [])
    for label in labels:
        target = sweep.project.target("tiny", label)
        assert target.exists(), f"{target} missing:\n{sweep.log[-4000:]}"
        nb = json.loads(target.read_text())
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
        x = nb["metadata"]["nbsweep"]["parameters"].get("x", 1)
        assert f"result {2 * x}" in stdout_of(target)
        assert sweep.slurm_job_of(label) in sweep.job_ids(), f"tiny/{label} ran outside the submitted SLURM jobs"


@pytest.mark.parametrize("name", PROFILES)
def test_failing_run_is_reported_failed_and_the_others_finish(sweeps, name):
    sweep = sweeps[name]
    assert sweep.proc.returncode != 0
    boom = sweep.project.target("tiny", "boom")
    assert not boom.exists()
    failed = json.loads(boom.with_suffix(".failed.ipynb").read_text())
    assert failed["metadata"]["nbsweep"]["status"] == "failed"
    assert failed["metadata"]["nbsweep"]["error"]["ename"] == "ValueError"
    assert re.search(r"nbsweep: run tiny/boom FAILED.*tiny/boom/tiny_boom\.log", sweep.log)
    # profiles/cluster-generic retries a failed job once (profiles/slurm too; the test sets 0).
    assert sweep.log.count("Trying to restart job") == RETRIES[name]
    assert all(sweep.project.target("tiny", f"x{x}").exists() for x in BATCHED)


@pytest.mark.parametrize("name", PROFILES)
def test_batch_size_submits_one_slurm_job_per_batch(sweeps, name):
    sweep = sweeps[name]
    batches = math.ceil(len(BATCHED) / BATCH_SIZE)
    ran_in = [sweep.slurm_job_of(f"x{x}") for x in BATCHED]
    # Runs are batched in config order: x1-x3 share one job, x4-x5 the next.
    assert ran_in[:BATCH_SIZE] == [ran_in[0]] * BATCH_SIZE
    assert ran_in[BATCH_SIZE:] == [ran_in[-1]] * (len(BATCHED) - BATCH_SIZE)
    assert len(set(ran_in)) == batches < len(BATCHED)
    unbatched = 1 + RETRIES[name] + (name == "slurm")  # boom, its retries, and the sized run
    assert len(sweep.submissions) == batches + unbatched


def test_slurm_submission_count_matches_squeue_history(sweeps):
    """The plugin's log and slurmctld agree on what this invocation submitted (sacct-free)."""
    sweep = sweeps["slurm"]
    run_id = re.search(r"SLURM run ID: (\S+)", sweep.log).group(1)
    # The plugin names every job after the invocation's run id.
    history = command("squeue", "--noheader", "--states=all", f"--name={run_id}", "--format=%i %T").split("\n")
    states = dict(line.split() for line in history if line.strip())
    assert sorted(states) == sorted(sweep.job_ids())
    grouped = [jobid for jobid, log in sweep.submissions if "/group_" in log]
    assert sorted(grouped) == sorted({sweep.slurm_job_of(f"x{x}") for x in BATCHED})
    assert all(states[jobid] == "COMPLETED" for jobid in grouped)
    assert list(states.values()).count("FAILED") == 1  # boom


def test_run_resources_reach_sbatch(sweeps, cluster):
    sweep = sweeps["slurm"]
    job = scontrol_job(sweep.slurm_job_of("sized"))
    assert job["NumCPUs"] == str(min(2, cluster))  # threads
    assert job["MinMemoryNode"] == "600M"  # resources.mem_mb
    assert job["TimeLimit"] == "00:07:00"  # resources.runtime (minutes)
    assert job["Partition"] == "short"  # resources.slurm_partition
    assert job["Account"] == "nbsweep-ci"  # resources.slurm_account
    # Runs without a partition go to the cluster's default one.
    assert scontrol_job(sweep.slurm_job_of("x1"))["Partition"] == "main"


def test_slurm_profile_keeps_workflow_profile_and_reruns_only_the_failed_run(sweeps):
    """profiles/default still applies (mtime triggers); completed notebooks are up to date."""
    sweep = sweeps["slurm"]
    assert "workflow specific profile" in sweep.log and "profiles/default" in sweep.log
    dry = subprocess.run(
        snakemake(
            "-d", str(sweep.project.root), "--profile", str(REPO / "profiles" / "slurm"), "--dry-run", "--slurm-status-command", "squeue"
        ),
        cwd=sweep.project.root,
        env=sweep.project.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert re.findall(r"^tiny/(\S+): (.*)$", dry.stdout, re.M) == [("boom", "failed last time")], dry.stdout


# --- a pipeline: prep -> train(k) -> evaluate(k) -> compare (after: evaluate) -------
CHAIN_K = [1, 2]
SCALE = 3
PRINT_JOB_ID = "import os\nprint('SLURM_JOB_ID', os.environ.get('SLURM_JOB_ID'))"
CHAIN_TEMPLATES = {
    # `noise` changes prep's parameters but not what it writes: the early cutoff case.
    "prep": (
        "import pathlib\npathlib.Path('results').mkdir(exist_ok=True)\npathlib.Path('results/clean.csv').write_text(f'x\\n{scale}\\n')",
        "scale = 1\nnoise = 0",
    ),
    "train": (
        "import pathlib\nv = int(pathlib.Path('results/clean.csv').read_text().split()[1])\n"
        "pathlib.Path(f'results/model_{k}.txt').write_text(str(v * k))",
        "k = 1",
    ),
    "evaluate": (
        "import pathlib\nfrom nbsweep import record\nrecord(score=int(pathlib.Path(f'results/model_{k}.txt').read_text()))",
        "k = 1",
    ),
    "compare": (
        "from nbsweep import record\nprint('best', max(u['metrics']['score'] for u in upstream), sorted(u['run'] for u in upstream))",
        "upstream = []",
    ),
}
CHAIN_RUNS = ["prep/base", *(f"{name}/k{k}" for name in ("train", "evaluate") for k in CHAIN_K), "compare/all"]
# consumer -> the runs it must start after
CHAIN_UPSTREAM = {
    **{f"train/k{k}": ["prep/base"] for k in CHAIN_K},
    **{f"evaluate/k{k}": [f"train/k{k}"] for k in CHAIN_K},
    "compare/all": [f"evaluate/k{k}" for k in CHAIN_K],
}


def chain_config(noise: int) -> dict:
    return {
        "defaults": {"kernel": "python3", "timeout": 120, "resources": {"mem_mb": 300, "runtime": 5}},
        "runs": [
            {
                "notebook": "notebooks/prep.ipynb",
                "label": "base",
                "parameters": {"scale": SCALE, "noise": noise},
                "outputs": ["results/clean.csv"],
            },
            {
                "notebook": "notebooks/train.ipynb",
                "label": "k{k}",
                "grid": {"k": CHAIN_K},
                "inputs": ["results/clean.csv"],
                "outputs": ["results/model_{k}.txt"],
            },
            {"notebook": "notebooks/evaluate.ipynb", "label": "k{k}", "grid": {"k": CHAIN_K}, "inputs": ["results/model_{k}.txt"]},
            {"notebook": "notebooks/compare.ipynb", "label": "all", "after": ["evaluate"]},
        ],
    }


@dataclass
class ChainInvocation:
    """One invocation, and what each run's notebook said right after it (later ones change them)."""

    sweep: Sweep
    records: dict[str, dict]  # run id -> nbsweep record of its notebook
    times: dict[str, tuple[datetime, datetime]]  # run id -> papermill start and end time
    slurm_jobs: dict[str, str | None]  # run id -> the SLURM job id its notebook printed
    stdout: dict[str, str]  # run id -> its notebook's stdout

    def execution(self, run_id: str) -> str | None:
        return self.records[run_id].get("execution")

    @property
    def log(self) -> str:
        """Snakemake's output, then the last lines of every SLURM job's log (a job's own errors are there)."""
        jobs = [
            f"--- {path}:\n" + "\n".join(Path(path).read_text().splitlines()[-3:])
            for _, path in self.sweep.submissions
            if Path(path).exists()
        ]
        return "\n".join([self.sweep.log[-4000:], *jobs])


def chain_target(project: Project, run_id: str) -> Path:
    return project.target(*run_id.split("/"))


def run_chain(project: Project) -> ChainInvocation:
    from nbsweep.provenance.records import read_record

    sweep = run_generic(project)
    targets = {run_id: chain_target(project, run_id) for run_id in CHAIN_RUNS if chain_target(project, run_id).exists()}
    stdout = {run_id: stdout_of(target) for run_id, target in targets.items()}
    return ChainInvocation(
        sweep,
        {run_id: read_record(chain_target(project, run_id)) for run_id in CHAIN_RUNS},
        {run_id: papermill_times(target) for run_id, target in targets.items()},
        {run_id: next(iter(re.findall(r"SLURM_JOB_ID (\S+)", text)), None) for run_id, text in stdout.items()},
        stdout,
    )


@pytest.fixture(scope="module")
def chain(background, tmp_path_factory) -> dict[str, ChainInvocation]:
    """Three invocations of a 4-stage chain: fresh, again (nothing to do), and after a change of
    prep's parameters that leaves its output byte-identical (early cutoff), while the sweeps
    and the branch switch run."""
    project = Project(tmp_path_factory.mktemp("chain"))
    for name, (code, parameters) in CHAIN_TEMPLATES.items():
        project.notebook(name, [PRINT_JOB_ID, code], parameters)
    project.write_config(chain_config(noise=0))
    invocations = {"fresh": run_chain(project), "again": run_chain(project)}
    project.write_config(chain_config(noise=1))
    invocations["cutoff"] = run_chain(project)
    return invocations


def papermill_times(target: Path) -> tuple[datetime, datetime]:
    meta = json.loads(target.read_text())["metadata"]["papermill"]
    return datetime.fromisoformat(meta["start_time"]), datetime.fromisoformat(meta["end_time"])


@pytest.mark.slow  # the chain fixture: three cluster invocations of an 8-run pipeline
@pytest.mark.timeout(3 * SWEEP_TIMEOUT + 120)  # the chain fixture's three invocations
def test_chain_runs_in_slurm_jobs_in_dependency_order(chain):
    fresh = chain["fresh"]
    project, log = fresh.sweep.project, fresh.log
    assert fresh.sweep.proc.returncode == 0, log
    for run_id in CHAIN_RUNS:
        assert fresh.records[run_id].get("status") == "ok", f"{run_id}: {fresh.records[run_id]}\n{log}"
        assert fresh.slurm_jobs[run_id] in fresh.sweep.job_ids(), f"{run_id} ran outside the submitted SLURM jobs"
    # One SLURM job per run (no batches here), each run with declared outputs under its own rule.
    assert len(fresh.sweep.submissions) == len(CHAIN_RUNS)
    job_names = [scontrol_job(jobid)["JobName"] for jobid in fresh.sweep.job_ids()]  # submit.py: nbsweep-<rule>
    assert sum(name.startswith("nbsweep-nbsweep_run@") for name in job_names) == 1 + len(CHAIN_K), job_names
    for consumer, producers in CHAIN_UPSTREAM.items():
        started, _ = fresh.times[consumer]
        for producer in producers:
            _, ended = fresh.times[producer]
            assert started > ended, f"{consumer} started at {started}, before {producer} ended at {ended}"
    assert (project.root / "results" / "clean.csv").read_text() == f"x\n{SCALE}\n"  # later invocations leave the same content
    for k in CHAIN_K:
        assert (project.root / "results" / f"model_{k}.txt").read_text() == str(SCALE * k)
    assert f"best {SCALE * max(CHAIN_K)} {sorted(f'evaluate/k{k}' for k in CHAIN_K)}" in fresh.stdout["compare/all"]


@pytest.mark.slow  # the chain fixture: three cluster invocations of an 8-run pipeline
def test_chain_second_invocation_submits_nothing(chain):
    again = chain["again"]
    assert again.sweep.proc.returncode == 0, again.log
    assert again.sweep.submissions == []
    assert {run_id: again.execution(run_id) for run_id in CHAIN_RUNS} == {run_id: chain["fresh"].execution(run_id) for run_id in CHAIN_RUNS}


@pytest.mark.slow  # the chain fixture: three cluster invocations of an 8-run pipeline
def test_chain_early_cutoff_on_the_cluster(chain):
    """prep re-executes (its parameters changed) but writes the same clean.csv: nothing
    downstream executes again; the consumers say they are unchanged."""
    cutoff, before = chain["cutoff"], chain["again"]
    project, log = cutoff.sweep.project, cutoff.log
    assert cutoff.sweep.proc.returncode == 0, log
    assert cutoff.records["prep/base"]["parameters"]["noise"] == 1
    assert cutoff.execution("prep/base") != before.execution("prep/base"), log
    consumers = [run_id for run_id in CHAIN_RUNS if run_id != "prep/base"]
    assert {run_id: cutoff.execution(run_id) for run_id in consumers} == {run_id: before.execution(run_id) for run_id in consumers}
    for run_id in consumers:
        run_log = layout.RunFiles(chain_target(project, run_id)).log.read_text()
        assert f"nbsweep: run {run_id} unchanged" in run_log, f"{run_id} log:\n{run_log}\n{log}"
    assert (project.root / "results" / "clean.csv").read_text() == f"x\n{SCALE}\n"


# --- a branch switch with a run cache in a shared folder -------------------------------
def branch_config(shared: Path, switched: int) -> dict:
    return {
        "cache": {"shared": str(shared)},
        "defaults": {"kernel": "python3", "timeout": 120, "resources": {"mem_mb": 300, "runtime": 5}},
        "runs": [
            {"notebook": "notebooks/tiny.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}},
            {"notebook": "notebooks/tiny.ipynb", "label": "switched", "parameters": {"x": switched}},
        ],
    }


def switch_branches(tmp_path_factory) -> tuple[dict[str, Sweep], dict[str, str], dict[str, dict[str, str]]]:
    """On the cluster, with a cache in a shared folder: a sweep, the same with one run's parameter
    changed (another branch), changed back; then a clone of the project (another checkout, its local
    cache empty) with the first config. The invocations, each run's execution after the first, and
    the SLURM job each run's notebook printed right after each invocation."""
    shared = tmp_path_factory.mktemp("shared-cache")
    project = Project(tmp_path_factory.mktemp("branch"))
    project.notebook("tiny", TEMPLATE_CODE, "x = 1\nfail = False")
    steps, ran_in = {}, {}
    for step, switched in (("main", 3), ("switched", 4), ("back", 3)):
        project.write_config(branch_config(shared, switched))
        steps[step] = run_slurm(project)
        ran_in[step] = {label: steps[step].slurm_job_of(label) for label in BRANCH_LABELS}
        if step == "main":
            executions = {label: project.record("tiny", label)["execution"] for label in BRANCH_LABELS}
    steps["clone"] = run_slurm(clone(project, tmp_path_factory.mktemp("branch-clone")))
    return steps, executions, ran_in


BRANCH_LABELS = ["x1", "x2", "switched"]


@pytest.fixture(scope="module")
def branch_switch(background):
    return background["branch"].result(timeout=4 * SWEEP_TIMEOUT)


@pytest.mark.timeout(4 * SWEEP_TIMEOUT + 120)  # waits for the branch switch's four invocations
def test_a_branch_switch_submits_nothing_the_shared_cache_holds(branch_switch):
    steps, executions, ran_in = branch_switch
    for step in steps.values():
        assert step.proc.returncode == 0, step.log[-4000:]
    assert sorted(ran_in["main"].values()) == sorted(steps["main"].job_ids())  # one job per run
    assert steps["switched"].job_ids() == [ran_in["switched"]["switched"]]  # only the changed run
    # Back on the first branch, and in a clone of it: no SLURM job at all, the original executions.
    for name in ("back", "clone"):
        step = steps[name]
        assert step.submissions == [], step.log[-4000:]
        assert {label: step.project.record("tiny", label)["execution"] for label in BRANCH_LABELS} == executions
    assert "nbsweep: 3 runs restored from cache instead of executing" in steps["clone"].log
    assert "result 6" in stdout_of(steps["clone"].project.target("tiny", "switched"))
