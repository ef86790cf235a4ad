"""Unit tests of the pure logic: config reading, expansion, fingerprints, job files, recovery."""

import base64
import json
import os
import socket
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbsweep import packaged
from nbsweep.canonical import canonical_json, digest, fingerprint
from nbsweep.config import deep_merge, from_seed_format, is_seed_format, load_config, load_schema
from nbsweep.errors import SweepError
from nbsweep.jobs import sync_job_file
from nbsweep.plan import Planner, grid_points, kernel_dirs, labelled_points, slug
from nbsweep.templates import code_digest
from nbsweep.warm import request_key
from nbsweep.workdir import marker_path, remove_stale_locks, remove_stale_markers
from nbsweep.sweep import batch_groups

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
    runs = plan(templates, """
defaults: {parameters: {beta: 9}, timeout: 10}
runs:
  - {notebook: nb/t.ipynb, label: "a{alpha}", grid: {alpha: [1, 2]}, timeout: 5, resources: {slurm_partition: fast}}
  - {notebook: nb/plain.ipynb, label: p, parameters: {config: {k: v}}}
""")
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


def test_batch_groups_chunk_runs_per_template(templates):
    runs = plan(templates, "runs: [{notebook: nb/t.ipynb, label: 'a{alpha}', grid: {alpha: [1, 2, 3]}, batch_size: 2}, {notebook: nb/plain.ipynb, label: p}]")
    assert list(batch_groups(runs).values()) == ["t-bs2-0", "t-bs2-0", "t-bs2-1", None]


def test_job_file_mtime_moves_only_with_the_fingerprint(templates):
    run, = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 5}]")
    job = sync_job_file(run, "out", {})
    os.utime(job, ns=(1_000_000_000, 1_000_000_000))
    retimed, = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 50}]")
    sync_job_file(retimed, "out", {})
    assert json.loads(job.read_text())["timeout"] == 50
    assert job.stat().st_mtime_ns == 1_000_000_000
    changed, = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 3}}]")
    sync_job_file(changed, "out", {})
    assert job.stat().st_mtime_ns > 1_000_000_000


def test_job_file_is_dated_before_a_target_made_from_the_same_fingerprint(templates):
    run, = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    job = sync_job_file(run, "out", {})
    target = job.parent / "t_a.ipynb"
    doc = json.loads(job.read_text())
    target.write_text(json.dumps({"metadata": {"nbsweep": {"fingerprint": doc["fingerprint"]}}}))
    job.unlink()
    sync_job_file(run, "out", {})
    assert job.stat().st_mtime_ns < target.stat().st_mtime_ns


def test_stale_locks_and_markers_are_removed(tmp_path):
    state = tmp_path / ".snakemake"
    (state / "locks").mkdir(parents=True)
    (state / "locks" / "0.output.lock").write_text("x")
    target = tmp_path / "done.ipynb"
    target.write_text(json.dumps({"metadata": {"nbsweep": {"fingerprint": "f"}}}))
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
    from nbsweep import warm

    ours, theirs = socket.socketpair()
    theirs.close()  # the spare has gone
    spares = [warm.Spare(pid=12345, channel=ours, key=("python3",))]
    monkeypatch.setattr(warm, "fork", lambda listener, spares, work, close=(): 999)
    client, _peer = socket.socketpair()
    assert warm.hand_over(client, {"argv": []}, [], ("python3",), spares, listener=None) == 999
    assert spares == [] and ours.fileno() == -1
