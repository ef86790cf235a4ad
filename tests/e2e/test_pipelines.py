"""Notebook pipelines: runs that feed runs, `after`, content-based early cutoff.

One 4-stage chain, prep -> train(k) -> evaluate(k) -> compare (after evaluate), is built once per
test process (``built``) and copied into each test's project (``chain``). A run executed when the
execution id its notebook records changed (``executions``): early cutoff puts the old notebook
back, which Snakemake then touches, so mtimes cannot tell.
"""

import base64
import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import Project, executions, one_sentence, wait_for

from nbsweep.provenance.records import read_record
from nbsweep.results.summary import read_result

pytestmark = pytest.mark.xdist_group("pipeline-chain")  # one worker runs the session's chain once for all of them

PREP = "import pathlib\npathlib.Path('results').mkdir(exist_ok=True)\npathlib.Path('results/clean.csv').write_text(f'x\\n{scale}\\n')"
TRAIN = (
    "import pathlib, time\ntime.sleep(1.5)\nv = int(pathlib.Path('results/clean.csv').read_text().split()[1])\n"
    "pathlib.Path(f'results/model_{k}.pkl').write_text(str(v * k))"
)
EVALUATE = "import pathlib\nfrom nbsweep import record\nrecord(score=int(pathlib.Path(f'results/model_{k}.pkl').read_text()))"
COMPARE = (
    "from nbsweep import record\n"
    "record(best=max(u['metrics']['score'] for u in upstream), runs=[u['run'] for u in upstream],\n"
    "       ks=[u['parameters']['k'] for u in upstream], notebooks=[u['notebook'] for u in upstream])"
)
CHAIN = {
    "runs": [
        {"notebook": "notebooks/prep.ipynb", "label": "base", "parameters": {"scale": 1}, "outputs": ["results/clean.csv"]},
        {
            "notebook": "notebooks/train.ipynb",
            "label": "k{k}",
            "grid": {"k": [1, 2]},
            "inputs": ["results/clean.csv"],
            "outputs": ["results/model_{k}.pkl"],
        },
        {"notebook": "notebooks/evaluate.ipynb", "label": "k{k}", "grid": {"k": [1, 2]}, "inputs": ["results/model_{k}.pkl"]},
        {"notebook": "notebooks/compare.ipynb", "label": "all", "after": ["evaluate"]},
    ]
}
RUNS = {"prep/base", "train/k1", "train/k2", "evaluate/k1", "evaluate/k2", "compare/all"}
DOWNSTREAM = RUNS - {"prep/base"}


def make_chain(project: Project, config: dict = CHAIN) -> None:
    project.notebook("prep", [PREP], "scale = 1\nnoise = 0")
    project.notebook("train", [TRAIN], "k = 1")
    project.notebook("evaluate", [EVALUATE], "k = 1")
    project.notebook("compare", [COMPARE], "upstream = []")
    project.write_config(config)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The chain, run once from scratch: (its project, the console of that invocation)."""
    project = Project(tmp_path_factory.mktemp("chain"))
    make_chain(project)
    proc = project.snakemake(cores=2)
    return project, proc


@pytest.fixture
def chain(built, project) -> Project:
    """A copy of the built chain (notebooks, outputs, .snakemake/) in this test's project."""
    shutil.copytree(built[0].root, project.root, symlinks=True, dirs_exist_ok=True)
    return project


def set_parameter(project: Project, position: int, **values) -> None:
    config = yaml.safe_load((project.root / "config/config.yaml").read_text())
    config["runs"][position].setdefault("parameters", {}).update(values)
    project.write_config(config)


def changed(before: dict[str, str], project: Project) -> set[str]:
    """Runs that really executed since ``before`` (their notebook records another execution)."""
    return {run for run, execution in executions(project).items() if before.get(run) != execution}


def unchanged_lines(console: str) -> set[str]:
    """Runs the console reports as kept by early cutoff."""
    marker = " unchanged (its upstream runs left the same inputs)"
    return {line.split("nbsweep: run ", 1)[1].split(marker)[0] for line in console.splitlines() if marker in line}


def metrics(project: Project, run: str) -> dict:
    return read_result(project.target(*run.split("/")))[1]


def status(project: Project) -> dict[str, str]:
    """`nbsweep status`: run -> its line."""
    proc = project.nbsweep("status")
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line for line in proc.stdout.splitlines() if line.split() and line.split()[0] in RUNS}


def project_files(project: Project) -> dict[str, tuple[int, int]]:
    """Every file of the project outside Snakemake's own .snakemake/ with its mtime and size."""
    found = {}
    for path in project.root.rglob("*"):
        if path.is_file() and ".snakemake" not in path.relative_to(project.root).parts:
            stat = path.stat()
            found[str(path.relative_to(project.root))] = (stat.st_mtime_ns, stat.st_size)
    return found


# --- a fresh chain, the no-op, and `after` ---


def test_fresh_chain_respects_order_and_runs_branches_in_parallel(built):
    project, proc = built
    assert set(executions(project)) == RUNS and all(executions(project).values())
    assert not unchanged_lines(proc.stderr)
    times = {run: project.papermill_times(*run.split("/")) for run in RUNS}
    for k in ("k1", "k2"):
        assert times["prep/base"][1] <= times[f"train/{k}"][0]
        assert times[f"train/{k}"][1] <= times[f"evaluate/{k}"][0]
        assert times[f"evaluate/{k}"][1] <= times["compare/all"][0]
    (start1, end1), (start2, end2) = times["train/k1"], times["train/k2"]
    assert start1 < end2 and start2 < end1, "the two train runs did not overlap with --cores 2"
    consumed = read_record(project.target("evaluate", "k2"))["inputs"]
    assert (
        list(consumed) == ["results/model_2.pkl"]
        and consumed["results/model_2.pkl"] == read_record(project.target("train", "k2"))["outputs"]["results/model_2.pkl"]
    )


def test_after_passes_upstream_runs_and_their_metrics(built):
    project, _ = built
    assert metrics(project, "evaluate/k1") == {"score": 1} and metrics(project, "evaluate/k2") == {"score": 2}
    assert metrics(project, "compare/all") == {
        "best": 2,
        "runs": ["evaluate/k1", "evaluate/k2"],
        "ks": [1, 2],
        "notebooks": [str(Path("papermill_outputs/evaluate") / k / f"evaluate_{k}.ipynb") for k in ("k1", "k2")],
    }
    made = read_record(project.target("compare", "all"))
    ids = executions(project)
    assert made["upstream"] == {"evaluate/k1": ids["evaluate/k1"], "evaluate/k2": ids["evaluate/k2"]}
    assert "upstream" not in made["parameters"]


def test_second_invocation_executes_nothing(chain):
    before = executions(chain)
    proc = chain.snakemake()
    assert changed(before, chain) == set() and not unchanged_lines(proc.stderr)
    assert " ok in " not in proc.stderr


def test_deleting_snakemake_state_and_touching_files_change_no_decision(chain):
    """As after `git checkout` back and forth: every file newer than the ones made from it."""
    before = executions(chain)
    shutil.rmtree(chain.root / ".snakemake")
    files = sorted(p for p in chain.root.rglob("*") if p.is_file())
    upstream_first = [*(p for p in files if p.parent.name == "results"), *(p for p in files if p.parent.name != "results")]
    for age, path in enumerate(reversed(upstream_first)):  # the inputs of the chain end up newest
        os.utime(path, (1_900_000_000 + age, 1_900_000_000 + age))
    proc = chain.snakemake()
    assert changed(before, chain) == set() and not unchanged_lines(proc.stderr)


# --- changes upstream ---


def test_upstream_change_of_content_reruns_everything_downstream(chain):
    before = executions(chain)
    set_parameter(chain, 0, scale=3)
    proc = chain.snakemake()
    assert changed(before, chain) == RUNS and not unchanged_lines(proc.stderr)
    assert (chain.root / "results/model_2.pkl").read_text() == "6"
    assert metrics(chain, "compare/all")["best"] == 6


def test_early_cutoff_when_a_producer_writes_the_same_bytes(chain):
    before = executions(chain)
    set_parameter(chain, 0, noise=1)  # prep re-executes, clean.csv does not change
    proc = chain.snakemake()
    assert changed(before, chain) == {"prep/base"}
    assert unchanged_lines(proc.stderr) == DOWNSTREAM, proc.stderr
    assert (chain.root / "results/model_1.pkl").read_text() == "1" and (chain.root / "results/model_2.pkl").read_text() == "2"
    assert all(line.endswith("up to date") for line in status(chain).values())
    proc = chain.snakemake()  # the kept notebooks are current: nothing to do
    assert changed(before, chain) == {"prep/base"} and not unchanged_lines(proc.stderr)


def test_deleted_intermediate_is_rebuilt_and_identical_content_stops_there(chain):
    before = executions(chain)
    (chain.root / "results/model_2.pkl").unlink()
    proc = chain.snakemake()
    assert changed(before, chain) == {"train/k2"}
    assert unchanged_lines(proc.stderr) == {"evaluate/k2", "compare/all"}
    assert (chain.root / "results/model_2.pkl").read_text() == "2"


def test_status_names_the_producer_of_a_hand_edited_intermediate_and_the_run_restores_it(chain):
    (chain.root / "results/model_2.pkl").write_text("99")
    lines = status(chain)
    assert "stale" in lines["evaluate/k2"] and "input results/model_2.pkl changed, produced by train/k2" in lines["evaluate/k2"]
    assert "stale" in lines["train/k2"] and "output results/model_2.pkl is not what the run wrote" in lines["train/k2"]
    assert lines["evaluate/k1"].endswith("up to date")
    before = executions(chain)
    proc = chain.snakemake()
    assert changed(before, chain) == {"train/k2"} and unchanged_lines(proc.stderr) == {"evaluate/k2", "compare/all"}
    assert (chain.root / "results/model_2.pkl").read_text() == "2"


def test_a_changed_set_of_after_runs_reruns_only_the_run_after_them(chain):
    config = yaml.safe_load((chain.root / "config/config.yaml").read_text())
    for position in (1, 2):
        config["runs"][position]["grid"]["k"] = [1]
    chain.write_config(config)
    assert "no longer runs after evaluate/k2" in status(chain)["compare/all"]
    before = executions(chain)
    chain.snakemake()
    assert changed(before, chain) == {"compare/all"}
    assert metrics(chain, "compare/all")["runs"] == ["evaluate/k1"]


def test_template_rule_of_a_downstream_template_builds_what_it_needs(chain):
    for folder in ("papermill_outputs", "results", ".snakemake"):
        shutil.rmtree(chain.root / folder)
    chain.notebook("other", ["print('other')"], "x = 0")
    chain.write_config({"runs": [*CHAIN["runs"], {"notebook": "notebooks/other.ipynb", "label": "solo"}]})
    chain.snakemake("compare")
    assert set(executions(chain)) == RUNS
    assert metrics(chain, "compare/all")["best"] == 2


def test_dry_run_lists_the_chain_and_writes_nothing(chain):
    set_parameter(chain, 0, scale=2)
    before = project_files(chain)
    proc = chain.snakemake("-n", "--verbose")  # Snakemake's own listing, with each job's outputs
    listed = proc.stdout + proc.stderr
    for run in RUNS:
        name, label = run.split("/")
        assert f"output: papermill_outputs/{name}/{label}/{name}_{label}.ipynb" in listed
    assert "output: papermill_outputs/prep/base/prep_base.ipynb, results/clean.csv" in listed
    assert project_files(chain) == before


# --- failures ---


def test_failing_producer_stops_its_consumers_and_the_other_branch_finishes(chain):
    """train/k2 writes its model, then fails: the model is removed, evaluate/k2 and compare don't run."""
    chain.notebook("train", [TRAIN, "if k == 2:\n    raise ValueError('k2 is broken')"], "k = 1")
    before = executions(chain)
    proc = chain.snakemake(check=False)
    assert proc.returncode != 0 and "train/k2 FAILED" in proc.stderr and "k2 is broken" in proc.stderr
    assert not (chain.root / "results/model_2.pkl").exists()
    assert chain.target("train", "k2").with_suffix(".failed.ipynb").exists()
    assert changed(before, chain) == {"train/k1"}  # train/k2's notebook is gone, the rest kept
    assert "evaluate/k1" in unchanged_lines(proc.stderr)
    assert not {"evaluate/k2", "compare/all"} & unchanged_lines(proc.stderr)
    lines = status(chain)
    for run in ("evaluate/k2", "compare/all"):
        assert "not run" in lines[run] and "waits for train/k2, which failed" in lines[run]
    assert lines["evaluate/k1"].endswith("up to date") and "failed" in lines["train/k2"]
    rows = {f"{row['template']}/{row['label']}": row["status"] for row in json.loads((chain.out / "summary.json").read_text())}
    assert rows == {**dict.fromkeys(RUNS, "ok"), "train/k2": "failed", "evaluate/k2": "not run", "compare/all": "not run"}


def test_declared_output_not_written_fails_the_run_in_one_sentence(project):
    project.notebook("lazy", ["print('forgot to write')"], "x = 0")
    project.notebook("user", ["print(open('results/never.txt').read())"], "x = 0")
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/lazy.ipynb", "label": "a", "outputs": ["results/never.txt"]},
                {"notebook": "notebooks/user.ipynb", "label": "b", "inputs": ["results/never.txt"]},
            ]
        }
    )
    proc = project.snakemake(check=False)
    sentence = "run lazy/a finished but did not write its declared output results/never.txt"
    assert proc.returncode != 0 and sentence in proc.stderr
    failed = project.target("lazy", "a").with_suffix(".failed.ipynb")
    assert sentence in read_record(failed)["error"]["evalue"]
    assert not project.target("lazy", "a").exists() and not project.target("user", "b").exists()
    assert "Traceback" not in proc.stderr


# --- bad graphs: one sentence, nothing written ---

CYCLES = {
    "two runs": (
        [
            {"notebook": "notebooks/a.ipynb", "label": "x", "inputs": ["b.csv"], "outputs": ["a.csv"]},
            {"notebook": "notebooks/b.ipynb", "label": "y", "inputs": ["a.csv"], "outputs": ["b.csv"]},
        ],
        ["a/x -> b/y -> a/x", "b/y -> a/x -> b/y"],
    ),
    "own output as input": (
        [{"notebook": "notebooks/a.ipynb", "label": "x", "inputs": ["a.csv"], "outputs": ["a.csv"]}],
        ["a/x -> a/x"],
    ),
    "after": (
        [
            {"notebook": "notebooks/a.ipynb", "label": "x", "after": ["b"]},
            {"notebook": "notebooks/b.ipynb", "label": "y", "after": ["a/x"]},
        ],
        ["a/x -> b/y -> a/x", "b/y -> a/x -> b/y"],
    ),
}


@pytest.mark.parametrize("case", sorted(CYCLES))
def test_cycle_is_one_sentence_naming_it_and_nothing_is_written(project, case):
    runs, cycles = CYCLES[case]
    project.notebook("a", ["print(1)"], "x = 0")
    project.notebook("b", ["print(1)"], "x = 0")
    project.write_config({"runs": runs})
    sentence = one_sentence(project.snakemake(check=False))
    assert "form a cycle" in sentence and any(cycle in sentence for cycle in cycles), sentence
    assert not project.out.exists() and not (project.root / "a.csv").exists()


def test_output_claimed_twice_names_both_runs(project):
    project.notebook("a", ["print(1)"], "x = 0")
    project.write_config(
        {"runs": [{"notebook": "notebooks/a.ipynb", "label": label, "outputs": ["./results//same.csv"]} for label in ("one", "two")]}
    )
    sentence = one_sentence(project.snakemake(check=False))
    assert "'results/same.csv'" in sentence and "a/one" in sentence and "a/two" in sentence
    assert not project.out.exists()


@pytest.mark.parametrize("path", ["/tmp/elsewhere.csv", "../outside.csv", "results/../../outside.csv"])
def test_output_outside_the_project_is_refused(project, path):
    project.notebook("a", ["print(1)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/a.ipynb", "label": "one", "outputs": [path]}]})
    sentence = one_sentence(project.snakemake(check=False))
    assert "outside the project folder" in sentence and os.path.normpath(path) in sentence
    assert not project.out.exists()


@pytest.mark.parametrize("path", ["papermill_outputs/summary.csv", "notebooks/a.ipynb", "config/config.yaml"])
def test_output_that_is_a_file_nbsweep_reads_or_writes_is_refused(project, path):
    """A run declaring the summary (rewritten by every invocation: the run would never be current),
    a template or the config as its output is a planning error, before Snakemake removes the file."""
    project.notebook("a", ["print(1)"], "x = 0")
    project.notebook("w", [f"open({path!r}, 'w').write('x')"], "x = 0")
    project.write_config(
        {"runs": [{"notebook": "notebooks/a.ipynb", "label": "one"}, {"notebook": "notebooks/w.ipynb", "label": "two", "outputs": [path]}]}
    )
    proc = project.snakemake(check=False)
    assert not project.out.exists(), f"{path} as an output was accepted: {proc.stderr[-1500:]}"
    assert path in one_sentence(proc)


def test_outputs_with_shell_characters_are_plain_file_names(project):
    name = "results/a b;$(touch PWNED)'.txt"
    project.notebook("w", ["import pathlib\npathlib.Path(out).parent.mkdir(exist_ok=True)\npathlib.Path(out).write_text('hi')"], "out = ''")
    project.notebook("r", ["print('ECHO', open(src).read())"], "src = ''")
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/w.ipynb", "label": "a", "parameters": {"out": name}, "outputs": [name]},
                {"notebook": "notebooks/r.ipynb", "label": "b", "parameters": {"src": name}, "inputs": [name]},
            ]
        }
    )
    project.snakemake()
    assert (project.root / name).read_text() == "hi" and not list(project.root.rglob("PWNED"))
    before = executions(project)
    project.snakemake()
    assert executions(project) == before


# --- concurrency and kills ---


def started_train(project: Project):
    """True once a train job started (Snakemake removed its old model first)."""
    return lambda: not (project.root / "results/model_1.pkl").exists() or not (project.root / "results/model_2.pkl").exists()


def test_second_invocation_during_a_chain_is_refused_and_the_first_completes(chain):
    """The first invocation is held mid-chain (its evaluate runs wait for a gate file)."""
    gate = "import os, time\nwhile not os.path.exists('gate'):\n    time.sleep(0.1)"
    chain.notebook("evaluate", [gate, EVALUATE], "k = 1")
    before = executions(chain)
    set_parameter(chain, 0, scale=3)
    first = chain.popen()
    try:
        assert wait_for(lambda: bool(list(chain.out.glob("evaluate/*/.evaluate_*.partial.ipynb"))), 120)
        second = chain.snakemake(check=False)
        assert "another nbsweep invocation" in one_sentence(second)
        (chain.root / "gate").touch()
        assert first.wait(timeout=180) == 0
    finally:
        (chain.root / "gate").touch()
        if first.poll() is None:
            first.kill()
            first.wait()
    assert changed(before, chain) == RUNS and metrics(chain, "compare/all")["best"] == 6
    after = executions(chain)
    chain.snakemake()
    assert executions(chain) == after


def runners(project: Project) -> list:
    """The job processes (``nbsweep.execution.job``) of this project still alive."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        if proc.info["cwd"] == str(project.root) and "nbsweep.execution.job" in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def train_running(project: Project):
    return lambda: bool(list(project.out.glob("train/*/.train_*.partial.ipynb")))


def test_sigkill_of_snakemake_while_a_producer_runs_then_rerun_finishes_the_chain(chain):
    set_parameter(chain, 0, scale=3)
    first = chain.popen()
    assert wait_for(train_running(chain), 240)
    time.sleep(0.5)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert wait_for(lambda: not runners(chain), 30)
    proc = chain.snakemake()
    assert "FAILED" not in proc.stderr
    assert (chain.root / "results/model_1.pkl").read_text() == "3" and (chain.root / "results/model_2.pkl").read_text() == "6"
    assert metrics(chain, "evaluate/k2") == {"score": 6} and metrics(chain, "compare/all")["best"] == 6
    assert all(line.endswith("up to date") for line in status(chain).values())
    assert not list(chain.out.rglob(".*.partial.ipynb"))
    after = executions(chain)
    chain.snakemake()
    assert executions(chain) == after


def test_run_starting_as_snakemake_is_killed_does_not_finish_as_an_orphan(chain):
    """Snakemake SIGKILLed just as it starts the train jobs (it has removed their old outputs):
    the job processes must stop their runs, not finish them with nobody waiting (the next
    invocation would start the same runs beside them)."""
    set_parameter(chain, 0, scale=3)
    first = chain.popen()
    assert wait_for(started_train(chain), 240)
    killed_at = time.time()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert wait_for(lambda: not runners(chain), 30)
    # Moved into place after the kill (a rename sets ctime): a run the starved test process let finish before it is no orphan.
    finished = [k for k in ("k1", "k2") if chain.target("train", k).exists() and chain.target("train", k).stat().st_ctime > killed_at]
    assert not finished, f"train runs {finished} finished after Snakemake was killed"


def snakemake_marker(project: Project, path: str) -> Path:
    """Snakemake's "incomplete" marker of ``path`` (``.snakemake/incomplete/<urlsafe base64 of the
    path>``), as an invocation killed while the file's job ran leaves it."""
    marker = project.root / ".snakemake/incomplete" / base64.urlsafe_b64encode(path.encode()).decode()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("")
    return marker


def test_markers_of_declared_outputs_left_by_a_killed_invocation_lose_nothing(chain):
    """An invocation killed after train/k1 finished but before Snakemake cleared its markers: the
    run is complete (its notebook records the model it wrote), so nothing executes and nothing is lost."""
    for path in ("papermill_outputs/train/k1/train_k1.ipynb", "results/model_1.pkl"):
        snakemake_marker(chain, path)
    before = executions(chain)
    proc = chain.snakemake(check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert executions(chain) == before and (chain.root / "results/model_1.pkl").read_text() == "1"
