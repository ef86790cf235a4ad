"""Targets, seed compatibility, per-run kernel/timeout, working directory, logs, dry-run (13 and more)."""

import json
import re

import pytest
import yaml
from conftest import executions, one_sentence, stdout_of


def test_single_target_and_template_rule(echo_project):
    target = echo_project.target("echo", "two")
    echo_project.snakemake(str(target.relative_to(echo_project.root)))
    assert echo_project.executed({}) == {"echo/two"}
    echo_project.snakemake("echo")
    assert echo_project.executed({}) == {"echo/one", "echo/two"}
    dry = echo_project.snakemake("-n")  # other/one: echo/one's code and parameters, so its notebook would come from the run cache
    assert "nbsweep: run other/one would be restored from cache instead of executing" in dry.stderr
    dry = echo_project.snakemake("-n", "--config", "cache=false")
    assert "other/one: never run" in dry.stdout


def test_seed_configs_json_runs_exactly_its_entries(project):
    # The seed's notebooks have no parameters cell and read config[...]; injection goes on top.
    project.notebook("data_explorer", ["print('ECHO', config['data_url'], config['output_label'])"])
    project.notebook("unrelated", ["print('should not run')"])
    project.write_config({"runs": [{"notebook": "notebooks/unrelated.ipynb", "label": "x"}]})
    seed = {
        f"config_{name}": {"notebook": "notebooks/data_explorer.ipynb", "data_url": f"data/{name}.csv; $(x)", "output_label": name}
        for name in ("bank", "adult", "titanic")
    }
    (project.root / "configs.json").write_text(json.dumps(seed, indent="\t"))
    project.snakemake("--configfile", "configs.json")
    assert project.executed({}) == {"data_explorer/bank", "data_explorer/adult", "data_explorer/titanic"}
    out = project.target("data_explorer", "adult")
    assert "ECHO data/adult.csv; $(x) adult" in stdout_of(out)
    nb = json.loads(out.read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"config": seed["config_adult"]}
    assert "injected-parameters" in nb["cells"][0]["metadata"]["tags"]


def test_own_format_configfile_replaces_the_default_config(echo_project):
    (echo_project.root / "other.yaml").write_text(yaml.safe_dump({"runs": [{"notebook": "notebooks/other.ipynb", "label": "solo"}]}))
    echo_project.snakemake("--configfile", "other.yaml")
    assert echo_project.executed({}) == {"other/solo"}


def test_per_run_kernel_timeout_and_working_directory(project):
    project.add_kernel("alt")
    (project.root / "data").mkdir()
    (project.root / "data" / "value.txt").write_text("42")
    project.notebook(
        "where",
        ["import os, sys\nprint('ECHO', os.getcwd(), open('data/value.txt').read(), os.environ.get('JPY_PARENT_PID') is not None)"],
        "x = 0",
    )
    project.write_config(
        {
            "defaults": {"timeout": 60},
            "runs": [
                {"notebook": "notebooks/where.ipynb", "label": "default"},
                {"notebook": "notebooks/where.ipynb", "label": "alt", "kernel": "alt", "timeout": 30},
            ],
        }
    )
    project.snakemake()
    for label, kernel in (("default", "python3"), ("alt", "alt")):
        target = project.target("where", label)
        assert f"ECHO {project.root} 42" in stdout_of(target)
        nb = json.loads(target.read_text())
        assert nb["metadata"]["nbsweep"]["kernel"] == kernel
        log = target.with_suffix(".log").read_text()
        assert f"Executing notebook with kernel: {kernel}" in log
    assert not (project.root / ".snakemake" / "nbsweep").exists()  # job files go with the invocation


def test_demo_config_plans_every_run(project):
    """The shipped demo config is valid and plans its 11 runs (the README's demo command executes them):
    10 through the shared rule, the compare notebook (it declares an output) through its own."""
    import shutil

    from conftest import REPO

    for folder in ("config", "notebooks", "data"):
        shutil.copytree(REPO / folder, project.root / folder)
    proc = project.snakemake("-n", "--quiet", "rules")
    assert re.search(r"^nbsweep_run\s+10$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^nbsweep_run@compare_models@all\s+1$", proc.stdout, re.M), proc.stdout


def test_several_run_targets_on_the_command_line(echo_project):
    """Job files written while Snakemake builds the DAG are found even when it has already listed
    the folder of another run's job file (Snakemake caches folder listings)."""
    targets = [echo_project.target(*run) for run in (("echo", "one"), ("echo", "two"), ("other", "one"))]
    echo_project.snakemake(*(str(target.relative_to(echo_project.root)) for target in targets))
    assert echo_project.executed({}) == {"echo/one", "echo/two", "other/one"}


# --- selection flags: a template's name means all its runs, a run's notebook that run ---


def changed_runs(project, *args: str) -> set[str]:
    """Run ids whose notebook a snakemake invocation with ``args`` executed anew."""
    before = executions(project)
    project.snakemake(*args)
    return {run for run, execution in executions(project).items() if before.get(run) != execution}


def test_forcerun_a_template_a_run_or_everything_executes_exactly_those_runs(echo_swept):
    echo_project = echo_swept  # every run executed once (test_incremental's fresh run)
    assert changed_runs(echo_project, "--forcerun", "echo") == {"echo/one", "echo/two"}
    assert changed_runs(echo_project, "-R", str(echo_project.target("echo", "two").relative_to(echo_project.root))) == {"echo/two"}
    assert changed_runs(echo_project, "-f", "other") == {"other/one"}
    assert changed_runs(echo_project, "--forceall") == {"echo/one", "echo/two", "other/one"}
    assert changed_runs(echo_project) == set()


@pytest.fixture
def staged(project):
    """A 2-stage pipeline, stage2/all after both stage1 runs, and a run of its own (side/s); nothing run yet."""
    for name in ("stage1", "stage2", "side"):
        project.notebook(name, [f"print('ECHO {name}')"])
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/stage1.ipynb", "label": "a"},
                {"notebook": "notebooks/stage1.ipynb", "label": "b"},
                {"notebook": "notebooks/stage2.ipynb", "label": "all", "after": ["stage1"]},
                {"notebook": "notebooks/side.ipynb", "label": "s"},
            ]
        }
    )
    return project


def test_until_and_omit_from_a_template_in_a_pipeline(staged):
    assert changed_runs(staged, "--omit-from", "stage1") == {"side/s"}
    assert changed_runs(staged, "--until", "stage1") == {"stage1/a", "stage1/b"}
    assert changed_runs(staged) == {"stage2/all"}
    assert changed_runs(staged, "--forcerun", "stage1", "--until", "stage1") == {"stage1/a", "stage1/b"}
    assert changed_runs(staged) == {"stage2/all"}  # its upstream runs executed anew


def test_omit_from_a_run_leaves_out_that_run_and_those_after_it(staged):
    first = str(staged.target("stage1", "a").relative_to(staged.root))
    assert changed_runs(staged, "--omit-from", first) == {"stage1/b", "side/s"}
    assert changed_runs(staged, "--until", first) == {"stage1/a"}


@pytest.mark.parametrize("flag", ["--omit-from", "--until", "--forcerun"])
def test_a_selection_that_names_no_template_run_or_rule_is_refused(echo_project, flag):
    proc = echo_project.snakemake(flag, "echo/one", check=False)
    line = one_sentence(proc)
    assert f"{flag} echo/one names no template, run or rule" in line and "papermill_outputs/" in line
    assert executions(echo_project) == {}
