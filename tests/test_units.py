"""Unit tests of the pure logic: config reading, expansion, fingerprints, job files, recovery."""

import base64
import json
import socket
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbsweep import layout, packaged
from nbsweep.canonical import canonical_json, digest
from nbsweep.errors import CONFIGFILE_ERRORS, SweepError
from nbsweep.execution import warm_server
from nbsweep.execution.warm_server import request_key
from nbsweep.model.config import (
    command_line_configfiles,
    configfile_problem,
    deep_merge,
    from_seed_format,
    is_seed_format,
    load_config,
    load_schema,
    read_document,
)
from nbsweep.model.plan import Planner, check_output_dir, grid_points, kernel_dirs, labelled_points, non_finite_number, slug, whole_seconds
from nbsweep.model.resources import standard_resources
from nbsweep.model.templates import code_digest
from nbsweep.provenance.records import Provenance, explain, fingerprint, recorded, stamp
from nbsweep.provenance.state import planned
from nbsweep.provenance.sweep import Sweep, batch_groups
from nbsweep.smk.workdir import marker_path, remove_stale_locks, remove_stale_markers

SCHEMA = load_schema(packaged.SCHEMA)


def test_canonical_json_ignores_key_order_but_not_types():
    assert canonical_json({"b": 1, "a": {"y": 2, "x": 1}}) == canonical_json({"a": {"x": 1, "y": 2}, "b": 1})
    assert digest({"x": 1}) != digest({"x": 1.0}) != digest({"x": "1"})
    with pytest.raises(TypeError):
        canonical_json({"when": object()})


def test_fingerprint_uses_only_what_decides_the_output():
    doc = {"template_code": "t", "kernel": "python3", "parameters": {"a": 1}, "inputs": {}, "timeout": 5, "run": "x/y"}
    assert fingerprint(doc) == fingerprint({**doc, "timeout": None, "run": "z/w"})
    assert fingerprint(doc) != fingerprint({**doc, "parameters": {"a": 2}})


def notebook(code="x = 1", markdown="intro", tags=(), kernel="python3"):
    cell = new_code_cell(code)
    cell.metadata["tags"] = list(tags)
    return new_notebook(cells=[new_markdown_cell(markdown), cell], metadata={"kernelspec": {"name": kernel, "display_name": kernel}})


def test_code_digest_covers_code_tags_and_kernel_only():
    base = code_digest(notebook())
    saved = notebook()
    saved.cells[1].outputs = [new_output("stream", name="stdout", text="1")]
    saved.cells[1].execution_count = 12
    saved.metadata["language_info"] = {"version": "3.12"}
    assert code_digest(saved) == base
    assert code_digest(notebook(markdown="other words")) == base
    assert code_digest(notebook(code="x = 2")) != base
    assert code_digest(notebook(tags=["parameters"])) != base
    assert code_digest(notebook(kernel="ir")) != base


def test_grid_points_and_labels():
    assert grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert [label for label, _ in labelled_points({"label": "d{a}_{b}", "grid": {"a": [1, 2], "b": ["x"]}}, "w")] == ["d1_x", "d2_x"]
    assert [label for label, _ in labelled_points({"grid": {"lr": [0.1], "d": [3]}}, "w")] == ["lr0.1_d3"]
    with pytest.raises(SweepError, match="put every grid key that varies"):
        labelled_points({"label": "same", "grid": {"a": [1, 2]}}, "w")
    with pytest.raises(SweepError, match="has no label"):
        labelled_points({"notebook": "x.ipynb"}, "w")


def test_slug_suggestions_are_path_safe():
    assert slug("../x") == "x"
    assert slug("my run/2") == "my-run-2"
    assert slug("///") == "run1"


def test_seed_format_detection_and_conversion(tmp_path):
    seed = {"config_a": {"notebook": "n.ipynb", "data_url": "u", "output_label": "a"}}
    assert is_seed_format(seed) and not is_seed_format({"runs": []}) and not is_seed_format({})
    converted = from_seed_format(seed, tmp_path / "configs.json")
    assert converted == {"runs": [{"notebook": "n.ipynb", "label": "a", "parameters": {"config": seed["config_a"]}}]}


def test_deep_merge():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1, "c": 4}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_config_merges_files_and_defaults(tmp_path):
    first = write(tmp_path / "a.yaml", "defaults: {threads: 2, resources: {mem_mb: 500}}\nruns: [{notebook: a.ipynb, label: x}]\n")
    second = write(tmp_path / "b.json", '{"output_dir": "out", "runs": [{"notebook": "b.ipynb", "label": "y"}]}')
    config = load_config([first, second], SCHEMA)
    assert config.output_dir == "out"
    assert config.defaults["threads"] == 2 and config.defaults["resources"] == {"mem_mb": 500, "runtime": 30}
    assert [(r.source, r.position, r.spec["label"]) for r in config.runs] == [(str(first), 1, "x"), (str(second), 1, "y")]


@pytest.fixture
def templates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    with_params = notebook(code="alpha = 1\nbeta = 2", tags=["parameters"])
    nbformat.write(with_params, tmp_path / "nb" / "t.ipynb")
    nbformat.write(notebook(), tmp_path / "nb" / "plain.ipynb")
    return tmp_path


def plan(tmp_path, text):
    return Planner(load_config([write(tmp_path / "c.yaml", text)], SCHEMA), kernels={"python3"}).plan()


def test_planner_expands_defaults_grid_and_overrides(templates):
    runs = plan(
        templates,
        """
defaults: {parameters: {beta: 9}, timeout: 10}
runs:
  - {notebook: nb/t.ipynb, label: "a{alpha}", grid: {alpha: [1, 2]}, timeout: 5, resources: {slurm_partition: fast}}
  - {notebook: nb/plain.ipynb, label: p, parameters: {config: {k: v}}}
""",
    )
    assert [(r.id, r.parameters, r.timeout) for r in runs] == [
        ("t/a1", {"beta": 9, "alpha": 1}, 5),
        ("t/a2", {"beta": 9, "alpha": 2}, 5),
        ("plain/p", {"beta": 9, "config": {"k": "v"}}, 10),
    ]
    assert runs[0].resources == {"mem_mb": 1000, "runtime": 30, "slurm_partition": "fast"}
    assert runs[0].kernel == "python3"


def test_planner_rejects_same_stem_from_two_folders(templates):
    (templates / "other").mkdir()
    nbformat.write(notebook(), templates / "other" / "plain.ipynb")
    with pytest.raises(SweepError, match="share the name 'plain'"):
        plan(templates, "runs: [{notebook: nb/plain.ipynb, label: a}, {notebook: other/plain.ipynb, label: b}]")


def test_configs_are_read_as_yaml_1_2(tmp_path):
    doc = read_document(write(tmp_path / "c.yaml", "lr: 1e-3\nl2: 5E-4\nflag: yes\noff: no\nn: 010\nt: true\n"))
    assert doc == {"lr": 0.001, "l2": 0.0005, "flag": "yes", "off": "no", "n": 10, "t": True}
    assert read_document(write(tmp_path / "c.json", '{"lr": 1e-3}')) == {"lr": 0.001}


def test_duplicate_keys_are_refused_with_key_and_line(tmp_path):
    with pytest.raises(SweepError, match=r"c.yaml: key 'x' appears twice in one mapping \(the second time at line 4\)"):
        read_document(write(tmp_path / "c.yaml", "runs:\n  - parameters:\n      x: 1\n      x: 2\n"))
    with pytest.raises(SweepError, match=r"c.json: key 'label' appears twice .* line 2"):
        read_document(write(tmp_path / "c.json", '{"runs": [{"label": "a",\n "label": "b"}]}'))


def test_keys_that_are_not_text_are_refused_where_they_are(tmp_path):
    with pytest.raises(SweepError, match=r"run #1 \('a'\): key 2 under 'parameters.opt' is not text \(YAML reads it as int\)"):
        read_document(write(tmp_path / "c.yaml", "runs: [{label: a, parameters: {opt: {2: x}}}]\n"))
    with pytest.raises(SweepError, match=r"c.yaml: key None at the top level is not text"):
        read_document(write(tmp_path / "c.yaml", "~: 1\nruns: []\n"))


def test_configfiles_of_a_snakemake_command_line():
    argv = ["-n", "--configfile", "a.yaml", "b.json", "--cores", "2", "--configfiles=c.yaml", "--configf", "d.yaml", "--config", "x=1", "e"]
    assert command_line_configfiles(argv) == [Path(p) for p in ("a.yaml", "b.json", "c.yaml", "d.yaml")]
    assert command_line_configfiles(["--cores", "1", "target.ipynb", "--conf", "x"]) == []


def test_the_sentence_for_a_configfile_snakemake_cannot_parse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "good.yaml", "runs: []\n")
    (tmp_path / "latin1.yaml").write_bytes(b"runs: [\xe9]\n")
    write(tmp_path / "list.yaml", "- a\n")
    write(tmp_path / "broken.json", '{"runs": [')
    assert configfile_problem(["--configfile", "good.yaml"]) is None
    assert configfile_problem(["--configfile", "good.yaml", "latin1.yaml"]) == "config file latin1.yaml is not UTF-8 text; save it as UTF-8"
    assert configfile_problem(["--configfile=list.yaml"]).startswith("list.yaml must hold a mapping with a 'runs' list")
    assert configfile_problem(["--configfiles", "broken.json", "-n"]).startswith("broken.json is not valid JSON (line 1")
    assert configfile_problem(["--configfile", "missing.yaml"]).startswith("config file missing.yaml does not exist")


def test_snakemake_configfile_messages_are_the_ones_it_prints(tmp_path):
    """The texts a logger plugin looks for are what Snakemake's own --configfile loader raises."""
    from snakemake.common.configfile import load_configfile

    cases = [("broken.yaml", b"runs: [\n"), ("list.yaml", b"- a\n"), ("latin1.yaml", b"runs: [\xe9]\n")]
    for (name, content), text in zip(cases, CONFIGFILE_ERRORS[: len(cases)], strict=True):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(Exception) as raised:
            load_configfile(tmp_path / name)
        assert text in f"{type(raised.value).__name__}: {raised.value}", raised.value


def test_standard_resources_are_read_as_snakemake_reads_them():
    assert standard_resources({"mem": "4GB", "runtime": "2h", "slurm_partition": "fast"}, "w") == {
        "mem_mb": 4000,
        "runtime": 120,
        "slurm_partition": "fast",
    }
    assert standard_resources({"mem_mib": 1000, "disk": 2000, "runtime": 2.5}, "w") == {"mem_mb": 1048, "disk_mb": 2000, "runtime": 2}
    assert standard_resources({"disk_mb": 10.4, "mem": "500"}, "w") == {"disk_mb": 10, "mem_mb": 500}
    for bad, phrase in [
        ({"mem_mb": "lots"}, "give a number"),
        ({"mem_mb": "4GB"}, "as mem: '4GB'"),
        ({"disk": "huge"}, "a size such as '4GB'"),
        ({"runtime": "soon"}, "a duration such as '2h'"),
        ({"runtime": -1}, "is negative"),
        ({"mem": "1GB", "mem_mib": 5}, "both 'mem' and 'mem_mib'"),
        ({"slurm_extra": float("nan")}, "give a finite number"),
    ]:
        with pytest.raises(SweepError, match=phrase):
            standard_resources(bad, "w")


def test_run_resources_replace_the_default_of_the_same_resource(templates):
    write(templates / "c.yaml", "defaults: {resources: {mem: 2GB}}\nruns: [{notebook: nb/t.ipynb, label: a, resources: {mem_mib: 1000}}]\n")
    config = load_config([templates / "c.yaml"], SCHEMA)
    assert config.defaults["resources"] == {"mem_mb": 2000, "runtime": 30}
    (run,) = Planner(config, kernels={"python3"}).plan()
    assert run.resources == {"mem_mb": 1048, "runtime": 30}


def test_timeouts_are_whole_seconds_rounded_up():
    assert [whole_seconds(t, "w") for t in (None, 2.5, 3, 0.01)] == [None, 3, 3, 1]
    with pytest.raises(SweepError, match="timeout inf is not a number of seconds"):
        whole_seconds(float("inf"), "w")


def test_nan_and_infinity_are_found_in_nested_parameters():
    assert non_finite_number({"a": 1, "b": {"c": [0.5, float("nan")]}})[0] == "b.c[1]"
    assert non_finite_number({"a": [1, "nan", None, {"x": 1e308}]}) is None
    assert non_finite_number({"inf": float("-inf")}) == ("inf", float("-inf"))


def test_python_keywords_cannot_be_parameters(templates):
    with pytest.raises(SweepError, match=r"parameter 'class', 'if' is a Python keyword, so nb/plain.ipynb cannot receive it .*'class_'"):
        plan(templates, "runs: [{notebook: nb/plain.ipynb, label: a, parameters: {class: 1, if: 2, match: 3}}]")
    (run,) = plan(templates, "runs: [{notebook: nb/plain.ipynb, label: a, parameters: {match: 1, case: 2, type: 3}}]")  # soft keywords
    assert run.parameters == {"match": 1, "case": 2, "type": 3}


def test_a_template_with_two_parameters_cells_is_refused(templates):
    nb = notebook(code="alpha = 1", tags=["parameters"])
    second = new_code_cell("alpha = 2")
    second.metadata["tags"] = ["parameters", "other"]
    nb.cells += [new_code_cell("print(alpha)"), second]
    nbformat.write(nb, templates / "nb" / "twice.ipynb")
    with pytest.raises(
        SweepError, match=r"run #1 \('a'\): nb/twice.ipynb has 2 cells tagged 'parameters' \(cells 2 and 4, counting from 1\)"
    ):
        plan(templates, "runs: [{notebook: nb/twice.ipynb, label: a}]")


def test_unusable_output_dirs_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_output_dir("fresh/deeper", "c.yaml")  # created later, inside a writable folder
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file").write_text("x")
    for output_dir, phrase in [
        ("dangling", "goes through the dangling symlink dangling \\(to 'nowhere'\\)"),
        ("dangling/sub", "dangling symlink dangling "),
        ("loop/sub", "symlink loop at loop"),
        ("file", "is a file, not a folder"),
        ("file/sub", "is inside file, which is a file"),
    ]:
        with pytest.raises(SweepError, match=f"^c.yaml: output_dir '{output_dir}' .*{phrase}"):
            check_output_dir(output_dir, "c.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "file", "loop"]


def test_batch_groups_chunk_runs_per_template(templates):
    runs = plan(
        templates,
        "runs: [{notebook: nb/t.ipynb, label: 'a{alpha}', grid: {alpha: [1, 2, 3]}, batch_size: 2}, {notebook: nb/plain.ipynb, label: p}]",
    )
    assert list(batch_groups(runs).values()) == ["t-bs2-0", "t-bs2-0", "t-bs2-1", None]


def test_provenance_fingerprint_diff_and_records(templates, tmp_path):
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 5}]")
    made = planned(run, {})
    assert made.fingerprint == fingerprint(made.as_dict())  # the hash older notebooks were stamped with
    (retimed,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 50}]")
    assert planned(retimed, {}).fingerprint == made.fingerprint  # timeout is not provenance
    (changed,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 3}}]")
    assert explain(planned(changed, {}).diff(made)) == ["parameters changed: alpha added (3)"]
    assert explain(made.diff(planned(changed, {}))) == ["parameters changed: alpha removed (was 3)"]

    nb = new_notebook(cells=[new_code_cell("x = 1")])
    stamp(nb, run.id, made, None)
    target = tmp_path / "t_a.ipynb"
    nbformat.write(nb, target)
    assert recorded(target) == made
    text = target.read_text()
    target.write_text(text[: len(text) // 2])  # truncated
    assert recorded(target) is None
    nb.metadata["nbsweep"]["parameters"] = {"alpha": 9}  # edited: no longer its fingerprint
    nbformat.write(nb, target)
    assert recorded(target) is None


def test_a_run_is_current_only_when_its_notebook_records_the_planned_provenance(templates, monkeypatch):
    monkeypatch.chdir(templates)
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    target = layout.target("out", run.name, run.label)
    target.parent.mkdir(parents=True)
    sweep = Sweep("out", [run])
    assert not sweep.is_current(run)  # missing
    nb = new_notebook(cells=[])
    stamp(nb, run.id, planned(run, {}), None)
    nbformat.write(nb, target)
    assert Sweep("out", [run]).is_current(run)
    (other,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 1.0}, check_types: false}]")
    assert not Sweep("out", [other]).is_current(other)  # 1 and 1.0 differ


def test_stale_locks_and_markers_are_removed(tmp_path):
    state = tmp_path / ".snakemake"
    (state / "locks").mkdir(parents=True)
    (state / "locks" / "0.output.lock").write_text("x")
    target = tmp_path / "done.ipynb"
    made = Provenance("c", "python3", {}, {})
    target.write_text(json.dumps({"metadata": {"nbsweep": {"fingerprint": made.fingerprint, **made.as_dict()}}}))
    encoded = base64.urlsafe_b64encode(str(target).encode()).decode()
    marker = state / "incomplete" / ("@" + encoded[:10]) / encoded[10:]
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    missing = state / "incomplete" / base64.urlsafe_b64encode(b"gone.ipynb").decode()
    missing.write_text("")
    assert marker_path(marker, state / "incomplete") == str(target)
    assert remove_stale_locks(state) == [state / "locks" / "0.output.lock"]
    assert remove_stale_markers(state) == [str(target)]
    assert not marker.exists() and missing.exists()


def test_kernel_dirs_follow_jupyter_path_and_ipythondir(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipy"))
    dirs = kernel_dirs()
    assert dirs[0] == str(tmp_path / "jp" / "kernels")
    assert dirs[-1] == str(tmp_path / "ipy" / "kernels")


def test_a_spare_fits_only_requests_with_the_same_kernel_directory_and_environment(tmp_path):
    (tmp_path / "job.json").write_text(json.dumps({"kernel": "python3"}))
    request = {"argv": ["job.json", "t.ipynb", "t.log"], "cwd": str(tmp_path), "env": {"A": "1", "B": "2"}, "setting": {"umask": 0o22}}
    key = request_key(request)
    assert key != request_key({**request, "setting": {"umask": 0o77}})
    assert key == request_key({**request, "env": {"B": "2", "A": "1"}, "argv": ["job.json", "u.ipynb", "u.log"]})
    assert key != request_key({**request, "env": {"A": "1", "B": "3"}})
    assert key != request_key({**request, "cwd": str(tmp_path / "elsewhere")})
    (tmp_path / "job.json").write_text(json.dumps({"kernel": "julia"}))
    assert key != request_key(request)
    assert request_key({**request, "argv": ["missing.json", "t.ipynb", "t.log"]})[0] is None


def test_a_spare_that_died_is_skipped_for_a_new_child(monkeypatch):

    ours, theirs = socket.socketpair()
    theirs.close()  # the spare has gone
    spares = [warm_server.Spare(pid=12345, channel=ours, key=("python3", ()))]
    monkeypatch.setattr(warm_server, "fork", lambda listener, spares, work, close=(): 999)
    client, _peer = socket.socketpair()
    assert warm_server.hand_over(client, {"argv": []}, [], ("python3", ()), spares, listener=None, zygotes={}) == 999
    assert spares == [] and ours.fileno() == -1
