"""Odd input is read as meant, or refused with one sentence before anything is written.

Every test drives real snakemake (and real kernels where something runs) on a project in tmp_path.
"""

import json
import os
import subprocess
import sys

import nbformat
import pytest
from conftest import one_sentence, planned_refusal, stdout_of
from nbformat.v4 import new_code_cell, new_notebook

TYPES = 'import json\nprint("TYPES" + json.dumps({k: type(v).__name__ for k, v in sorted(globals().items()) if k in ("lr", "l2", "flag")}))'


def test_yaml_1_2_numbers_from_a_configfile_reach_the_notebook_as_floats(project):
    project.notebook("train", [TYPES, "print('LR', repr(lr))"], "lr = 0.1\nl2 = 0.0\nflag = 'no'")
    configfile = project.write_config(
        "runs:\n  - notebook: notebooks/train.ipynb\n    label: 'lr{lr}'\n    grid: {lr: [1e-3, 2E-2]}\n    parameters: {l2: 1e-4, flag: yes}\n",
        "sweep.yaml",
    )
    project.snakemake("--configfile", str(configfile))
    for label, lr in (("lr0.001", "0.001"), ("lr0.02", "0.02")):
        out = stdout_of(project.target("train", label))
        assert 'TYPES{"flag": "str", "l2": "float", "lr": "float"}' in out, out
        assert f"LR {lr}" in out
    injected = json.loads(project.target("train", "lr0.001").read_text())["metadata"]["papermill"]["parameters"]
    assert injected == {"lr": 0.001, "l2": 0.0001, "flag": "yes"}  # YAML 1.2: `yes` is a string


def test_duplicate_key_in_a_configfile_is_refused_naming_key_and_line(project):
    project.notebook("echo", ["print(x)"], "x = 0")
    configfile = project.write_config(
        "runs:\n  - notebook: notebooks/echo.ipynb\n    label: a\n    parameters:\n      x: 1\n      x: 2\n", "dup.yaml"
    )
    message = one_sentence(project.snakemake("--configfile", str(configfile), check=False))
    assert "dup.yaml" in message and "'x' appears twice" in message and "line 6" in message, message
    assert not project.out.exists()


def test_a_fractional_timeout_is_rounded_up_and_still_applies(project):
    project.notebook("wait", ["import time\ntime.sleep(seconds)\nprint('DONE')"], "seconds = 0.0")
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/wait.ipynb", "label": "quick", "timeout": 2.5, "parameters": {"seconds": 0.1}},
                {"notebook": "notebooks/wait.ipynb", "label": "slow", "timeout": 0.4, "parameters": {"seconds": 8.0}},
            ]
        }
    )
    proc = project.snakemake(check=False)
    assert "TraitError" not in proc.stderr
    assert "DONE" in stdout_of(project.target("wait", "quick"))
    assert not project.target("wait", "slow").exists()  # 0.4 s became 1 s: the 8 s cell timed out
    assert "run wait/slow FAILED" in proc.stderr and "run wait/quick ok" in proc.stderr


def test_human_friendly_resources_are_read_as_snakemake_reads_them(project):
    project.notebook("echo", ["print(x)"], "x = 0")
    project.write_config(
        {
            "defaults": {"resources": {"mem": "2GB"}},
            "runs": [
                {"notebook": "notebooks/echo.ipynb", "label": "big", "parameters": {"x": 1}, "resources": {"mem": "4GB", "runtime": "2h"}},
                {"notebook": "notebooks/echo.ipynb", "label": "small", "parameters": {"x": 2}, "resources": {"disk": "1 GB"}},
            ],
        }
    )
    dry = project.snakemake("-n", "--verbose").stdout  # Snakemake's job blocks, with their resources
    jobs = {block.split("wildcards: ")[1].split("\n")[0]: block for block in dry.split("rule nbsweep_run:")[1:]}
    assert "mem_mb=4000" in jobs["notebook=echo, label=big"] and "runtime=120" in jobs["notebook=echo, label=big"]
    assert "mem_mb=2000" in jobs["notebook=echo, label=small"] and "disk_mb=1000" in jobs["notebook=echo, label=small"]
    project.snakemake()
    assert project.target("echo", "big").exists() and project.target("echo", "small").exists()


def test_templates_named_like_snakemake_rules_simply_work(project):
    names = ["notebook", "all", "render_notebook", "report_index", "refresh_summary"]
    for name in names:
        project.notebook(name, [f"print('I am {name}', x)"], "x = 0")
    project.write_config({"runs": [{"notebook": f"notebooks/{name}.ipynb", "label": "one", "parameters": {"x": 1}} for name in names]})
    project.snakemake("all")  # the target rule of template all.ipynb: only its run
    assert [name for name in names if project.target(name, "one").exists()] == ["all"]
    project.snakemake("notebook", "render_notebook")
    assert [name for name in names if project.target(name, "one").exists()] == ["notebook", "all", "render_notebook"]
    project.snakemake()
    for name in names:
        assert f"I am {name} 1" in stdout_of(project.target(name, "one"))


def test_a_template_without_kernelspec_metadata_runs_on_the_configured_kernel(project):
    cell = new_code_cell("x = 0")
    cell.metadata["tags"] = ["parameters"]
    path = project.root / "notebooks" / "bare.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(new_notebook(cells=[cell, new_code_cell("print('X', x)")]), path)
    project.write_config({"runs": [{"notebook": "notebooks/bare.ipynb", "label": "a", "kernel": "python3", "parameters": {"x": 7}}]})
    project.snakemake()
    assert "X 7" in stdout_of(project.target("bare", "a"))


def test_a_target_path_typo_gets_one_sentence(echo_project):
    proc = echo_project.snakemake("papermill_outputs/echo/typo/echo_typo.ipynb", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "KeyError" not in proc.stderr, proc.stderr[-3000:]
    mentions = [line for line in proc.stderr.splitlines() if "echo/typo" in line]
    assert mentions == ["nbsweep: no run echo/typo is configured; check the target path against the config."], proc.stderr[-3000:]


@pytest.fixture
def locked_folder(project):
    """A folder this process really cannot write into: mode 0555 for a normal user; for root, which
    ignores modes, the immutable attribute (``chattr +i``), which access(2) and mkdir(2) honour."""
    folder = project.root / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no folder is read-only to root")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("kind", ["dangling", "loop", "file", "read-only"])
def test_an_unusable_output_dir_is_refused_before_anything_is_written(project, kind, request):
    project.notebook("echo", ["print(x)"], "x = 0")
    output_dir = {"dangling": "out", "loop": "out/sub", "file": "out", "read-only": "locked/out"}[kind]
    if kind == "dangling":
        (project.root / "out").symlink_to("missing")
    elif kind == "loop":
        (project.root / "out").symlink_to("out")
    elif kind == "file":
        (project.root / "out").write_text("not a folder")
    else:
        request.getfixturevalue("locked_folder")
    project.write_config({"output_dir": output_dir, "runs": [{"notebook": "notebooks/echo.ipynb", "label": "a", "parameters": {"x": 1}}]})
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*") if ".snakemake" not in p.parts)
    message = one_sentence(project.snakemake(check=False))
    assert "config/config.yaml" in message and output_dir in message, message
    expected = {"dangling": "dangling symlink", "loop": "symlink loop", "file": "is a file", "read-only": "read-only for this user"}[kind]
    assert expected in message, message
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*") if ".snakemake" not in p.parts) == before
    assert not (project.root / "missing").exists()


BROKEN_CONFIGFILES = {
    "invalid YAML": (b"runs: [\n  - {notebook: x\n", "is not valid YAML (line 2"),
    "invalid JSON": (b'{"runs": [', "is not valid JSON (line 1"),
    "empty": (b"", "must hold a mapping with a 'runs' list"),
    "top-level list": (b"- a\n- b\n", "must hold a mapping with a 'runs' list"),
    "not UTF-8": (b"runs: [\xff\xfe]\n", "is not UTF-8 text"),
}


@pytest.mark.parametrize("case", BROKEN_CONFIGFILES)
def test_a_configfile_snakemake_cannot_parse_is_named_by_nbsweep(project, case):
    """Snakemake parses --configfile files itself before any workflow code runs, and names no file; it writes
    nothing. nbsweep's console (the logger plugin of the workflow profile) and `nbsweep status --configfile FILE`
    read the file as the workflow does and give the sentence."""
    content, expected = BROKEN_CONFIGFILES[case]
    project.notebook("echo", ["print(x)"], "x = 0")
    configfile = project.root / ("broken.json" if case == "invalid JSON" else "broken.yaml")
    configfile.write_bytes(content)
    proc = project.snakemake("--configfile", configfile.name, check=False)
    assert proc.returncode != 0 and not project.out.exists()
    assert "Traceback" not in proc.stderr and expected in one_sentence(proc), proc.stderr
    status = subprocess.run(
        [sys.executable, "-m", "nbsweep", "status", "--configfile", configfile.name],
        check=False,
        cwd=project.root,
        capture_output=True,
        text=True,
        env=project.env,
    )
    message = one_sentence(status)
    assert message.startswith(f"nbsweep: {configfile.name}") or f"file {configfile.name}" in message, message
    assert expected in message, message
    assert not project.out.exists()


def test_nan_in_a_json_configfile_is_refused_naming_the_parameter(project):
    project.notebook("echo", ["print(x)"], "x = 0")
    configfile = project.root / "sweep.json"
    configfile.write_text('{"runs": [{"notebook": "notebooks/echo.ipynb", "label": "n", "parameters": {"x": {"lr": [0.1, NaN]}}}]}')
    message = one_sentence(project.snakemake("--configfile", configfile.name, check=False))
    assert message.startswith("nbsweep: sweep.json: run #1 ('n'): parameter 'x.lr[1]' is nan"), message
    assert not project.out.exists()


# Odd input refused by `snakemake` and `nbsweep status` with the same one sentence, nothing written.


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A project with one finished run (its output folder holds index.html and the summaries), and
    templates named like nbsweep's own files, configured by no run yet."""
    from conftest import Project

    project = Project(tmp_path_factory.mktemp("odd"))
    project.notebook("echo", ["print(x)"], "x = 0")
    project.notebook("plain", ["print('plain')"])
    for name in RESULTS_NAMED:
        project.notebook(name, ["print(x)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/echo.ipynb", "label": "ok", "parameters": {"x": 1}}]})
    project.snakemake()
    assert (project.out / "index.html").is_file()
    return project


def everything_in(folder) -> dict:
    """Every file and folder under ``folder``, with its mtime."""
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*")}


def refused_by_both(project, configs: dict[str, str | bytes]) -> str:
    """Write the config files, run `snakemake --configfile` and `nbsweep status --configfile` on them:
    both are refused with the same one sentence (returned), and the output folder is untouched."""
    write_configs(project, configs)
    before = everything_in(project.out)
    message = one_sentence(project.snakemake("--configfile", *configs, check=False))
    status = subprocess.run(
        [sys.executable, "-m", "nbsweep", "status", "--configfile", *configs],
        check=False,
        cwd=project.root,
        capture_output=True,
        text=True,
        env=project.env,
    )
    assert one_sentence(status) == message
    assert everything_in(project.out) == before
    return message


def refused_in_process(project, configs: dict[str, str | bytes], monkeypatch) -> str:
    """The sentence ``refused_by_both`` gets, planned in this process (``planned_refusal``); nothing written."""
    write_configs(project, configs)
    before = everything_in(project.out)
    message = planned_refusal(project, list(configs), monkeypatch)
    assert everything_in(project.out) == before
    return message


def refused(project, configs: dict[str, str | bytes], monkeypatch, through_snakemake: bool) -> str:
    """One case of a kind through ``snakemake`` and ``nbsweep status`` (``refused_by_both``), the others in process."""
    return refused_by_both(project, configs) if through_snakemake else refused_in_process(project, configs, monkeypatch)


def write_configs(project, configs: dict[str, str | bytes]) -> None:
    for name, content in configs.items():
        (project.root / name).write_bytes(content if isinstance(content, bytes) else content.encode())


LONE_SURROGATES = {  # where the surrogate is -> (file name, content, what the sentence says)
    "YAML parameter": (
        "sweep.yaml",
        'runs:\n  - {notebook: notebooks/echo.ipynb, label: s, parameters: {x: "\\ud800"}}\n',
        r"nbsweep: sweep.yaml: run #1 ('s'): the value '\ud800' of 'parameters.x' holds the lone surrogate \ud800",
    ),
    "JSON key": (
        "sweep.json",
        '{"runs": [{"notebook": "notebooks/plain.ipynb", "label": "k", "parameters": {"config": {"\\udc80": 1}}}]}',
        r"nbsweep: sweep.json: run #1 ('k'): key '\udc80' under 'parameters.config' holds the lone surrogate \udc80",
    ),
    "JSON label": (
        "sweep.json",
        '{"runs": [{"notebook": "notebooks/echo.ipynb", "label": "a\\udfff"}]}',
        r"nbsweep: sweep.json: run #1 ('a\udfff'): the value 'a\udfff' of 'label' holds",
    ),
    "YAML input path": (
        "sweep.yaml",
        'runs:\n  - {notebook: notebooks/echo.ipynb, label: i, inputs: ["data/\\ud800.csv"]}\n',
        r"nbsweep: sweep.yaml: run #1 ('i'): the value 'data/\ud800.csv' of 'inputs[0]' holds",
    ),
    "YAML output_dir": (
        "sweep.yaml",
        'output_dir: "out\\ud800"\nruns:\n  - {notebook: notebooks/echo.ipynb, label: o}\n',
        r"nbsweep: sweep.yaml: the value 'out\ud800' of 'output_dir' holds",
    ),
}


@pytest.mark.parametrize("case", LONE_SURROGATES)
def test_text_that_utf8_cannot_store_is_refused_naming_file_run_and_fix(finished, case, monkeypatch):
    name, content, expected = LONE_SURROGATES[case]
    message = refused(finished, {name: content}, monkeypatch, through_snakemake=case == "YAML parameter")
    assert message.startswith(expected), message
    assert "which UTF-8 (job files, notebooks, the summary) cannot store; write the character itself" in message, message


def grid_of(sizes: dict[str, int]) -> str:
    """A config entry of template plain with a grid of these value counts per key."""
    grid = ", ".join(f"{key}: [{', '.join(map(str, range(size)))}]" for key, size in sizes.items())
    return f"  - {{notebook: notebooks/plain.ipynb, grid: {{{grid}}}}}\n"


def test_a_grid_of_a_hundred_million_runs_is_refused_before_it_is_expanded(finished):
    message = refused_by_both(finished, {"huge.yaml": "runs:\n" + grid_of(dict.fromkeys("abcdefgh", 10))})
    assert message.startswith(
        "nbsweep: huge.yaml: run #1: its grid gives 100,000,000 runs, the product of its keys' value counts "
        "(a: 10, b: 10, c: 10, d: 10, e: 10, f: 10, g: 10, h: 10), more than the 100,000 nbsweep plans at once; reduce its values"
    ), message


def test_grids_adding_up_to_more_runs_than_the_bound_are_refused_over_all_config_files(finished, monkeypatch):
    sixty_thousand = grid_of({"a": 10, "b": 10, "c": 10, "d": 10, "e": 6})
    configs = {"first.yaml": "runs:\n" + sixty_thousand, "second.yaml": "runs:\n" + sixty_thousand.replace("plain.ipynb", "echo.ipynb")}
    message = refused_in_process(finished, configs, monkeypatch)
    assert message.startswith(
        "nbsweep: second.yaml: run #1: its grid's 60,000 runs bring the config to 120,000 runs, more than the 100,000 nbsweep plans at once; "
        "split the sweep over config files run one after another (--configfile)"
    ), message


RESULTS_NAMED = ["index.html", "Summary.CSV", "summary.json"]


@pytest.mark.parametrize("name", RESULTS_NAMED)
def test_a_template_named_like_nbsweeps_own_files_is_refused(finished, name, monkeypatch):
    config = f"runs:\n  - {{notebook: notebooks/echo.ipynb, label: ok, parameters: {{x: 1}}}}\n  - {{notebook: notebooks/{name}.ipynb, label: a}}\n"
    message = refused(finished, {"clash.yaml": config}, monkeypatch, through_snakemake=name == "index.html")
    assert message == (
        f"nbsweep: clash.yaml: run #2 ('a'): template notebooks/{name}.ipynb would keep its runs in papermill_outputs/{name}, "
        f"where nbsweep writes its own {name.lower()}; rename the template, e.g. to {name.replace('.', '_')}.ipynb."
    ), message


CONTROL_CHARACTERS = {  # what holds them -> (config, what the sentence says)
    "refused label": (
        'runs:\n  - {notebook: notebooks/echo.ipynb, label: "a\\nb\\e[31m\\r", parameters: {x: 1}}\n',
        r"nbsweep: odd.yaml: run #1 ('a\nb\x1b[31m\r'): label 'a\nb\x1b[31m\r' is not path-safe",
    ),
    "key that is not text": (
        'runs:\n  - {notebook: notebooks/plain.ipynb, label: k, parameters: {config: {"a\\nb": {1: x}}}}\n',
        r"nbsweep: odd.yaml: run #1 ('k'): key 1 under 'parameters.config.a\nb' is not text",
    ),
    "template path": (
        'runs:\n  - {notebook: "notebooks/a\\tb\\e]0;x\\a.ipynb", label: t}\n',
        r"nbsweep: odd.yaml: run #1 ('t'): notebook notebooks/a\tb\x1b]0;x\x07.ipynb does not exist",
    ),
}


@pytest.mark.parametrize("case", CONTROL_CHARACTERS)
def test_control_characters_in_refused_input_are_escaped_in_the_sentence(finished, case, monkeypatch):
    config, expected = CONTROL_CHARACTERS[case]
    message = refused(finished, {"odd.yaml": config}, monkeypatch, through_snakemake=case == "refused label")
    assert message.startswith(expected), message
    assert message.isprintable(), message
