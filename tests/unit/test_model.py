"""nbsweep.model: reading configs, expanding runs, templates, parameters, pipelines, resources, secrets."""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.execution.execute import translators
from nbsweep.model.config import (
    check_text_is_utf8,
    deep_merge,
    dotted,
    from_seed_format,
    is_seed_format,
    load_config,
    lone_surrogate,
    non_utf8_text,
    parse_overrides,
    read_document,
    validate,
)
from nbsweep.model.formats import TEXT_EXTENSIONS
from nbsweep.model.parameters import (
    declared,
    declared_defaults,
    known_defaults,
    python_declarations,
    r_assignments,
    r_string,
    type_mismatch,
)
from nbsweep.model.pipeline import check_acyclic, fill_outputs, link_runs, producers, upstream_ids
from nbsweep.model.plan import (
    MAX_RUNS,
    Planner,
    check_output_dir,
    check_run_count,
    fill,
    grid_points,
    grid_size,
    labelled_points,
    non_finite_number,
    run_inputs,
    slug,
    whole_seconds,
)
from nbsweep.model.resources import standard_resources
from nbsweep.model.secrets import with_secrets
from nbsweep.model.spec import RunSpec, SweepConfig
from nbsweep.model.templates import changed_cell, code_cells, code_digest, legacy_code_digest, read_notebook, read_template
from nbsweep.provenance import records
from nbsweep.provenance.records import stamp
from nbsweep.provenance.state import planned
from nbsweep.provenance.sweep import Sweep, batch_groups
from nbsweep.smk.hooks import priorities

from .builders import SCHEMA, R, code_notebook, notebook, plan, write


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


def test_load_config_merges_files_and_defaults(tmp_path):
    first = write(tmp_path / "a.yaml", "defaults: {threads: 2, resources: {mem_mb: 500}}\nruns: [{notebook: a.ipynb, label: x}]\n")
    second = write(tmp_path / "b.json", '{"output_dir": "out", "runs": [{"notebook": "b.ipynb", "label": "y"}]}')
    config = load_config([first, second], SCHEMA)
    assert config.output_dir == "out"
    assert config.defaults["threads"] == 2 and config.defaults["resources"] == {"mem_mb": 500, "runtime": 30}
    assert [(r.source, r.position, r.spec["label"]) for r in config.runs] == [(str(first), 1, "x"), (str(second), 1, "y")]


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


def with_parameters(source: str, language: str = "python"):
    cell = new_code_cell(source, metadata={"tags": ["parameters"]})
    return new_notebook(cells=[new_code_cell("x = 99"), cell], metadata={"language_info": {"name": language}})


def test_declared_defaults_are_the_literal_assignments_of_the_parameters_cell():
    source = "a = 1\nb: float = 0.5  # help\nc = d = 'x'\nopts = {'k': (1, 2), 'on': True}\nn = len('ab')\ns = {1, 2}\nnone = None\na = 2"
    assert declared_defaults(with_parameters(source)) == {
        "a": 2,
        "b": 0.5,
        "c": "x",
        "d": "x",
        "opts": {"k": [1, 2], "on": True},
        "none": None,
    }
    assert declared_defaults(with_parameters("%matplotlib inline\nlr = 0.1\nname = 'm'  # a comment")) == {"lr": 0.1, "name": "m"}
    assert declared_defaults(with_parameters("x <- 1", language="R")) == {}
    assert declared_defaults(new_notebook(cells=[new_code_cell("x = 1")])) == {}


def test_known_defaults_are_the_literals_a_run_has_whether_or_not_its_config_repeats_them():
    source = (
        "bins = 40\nrate: float = 0.5\nname = 'a'\nnone = None\nitems = [1, {'k': 'v'}]\n"
        "n = len(name)\npair = (1, 2)\nhuge = 1e999\nc = 1j\n"  # an expression, a tuple, infinity, a complex
        "opts = {}\nopts.update(a=1)\nk = 1\nk += 1\nshared = other = [1]\n"  # changed later in the cell
        "edges = bins * 2\nlater = 1\nlater = later + 1\nm = 1\ndef m(): pass"
    )
    assert known_defaults(with_parameters(source), "python") == {
        "bins": 40,
        "rate": 0.5,
        "name": "a",
        "none": None,
        "items": [1, {"k": "v"}],
    }
    assert known_defaults(with_parameters("%matplotlib inline\nlr = 0.1"), "python") == {}  # not plain Python
    assert known_defaults(with_parameters("x <- 1", language="R"), "R") == {}
    assert known_defaults(new_notebook(cells=[new_code_cell("x = 1")]), "python") == {}  # no parameters cell


def test_none_fits_a_type_inferred_from_a_default_but_not_an_annotation_that_excludes_it():
    assert type_mismatch("str", None, annotated=False) is None  # x = 'a'
    assert type_mismatch("int", None, annotated=True) == "null"  # x: int = 1
    assert type_mismatch("int | None", None, annotated=True) is None
    assert type_mismatch("str", 1, annotated=False) == "int"
    found = python_declarations("x: int = 1\ny = 'a'\nz: int | None = 1")
    assert [(p.name, p.type_name, p.annotated) for p in found] == [("x", "int", True), ("y", "str", False), ("z", "int | None", True)]


@dataclass(frozen=True)
class Origin:
    spec: dict = field(default_factory=dict)
    source: str = "config/config.yaml"
    position: int = 1

    def where(self) -> str:
        return f"{self.source}: run #{self.position}"


@dataclass(frozen=True)
class FakeTemplate:
    path: str


@dataclass(frozen=True)
class FakeRun:
    """What nbsweep.model.pipeline reads of a planned run."""

    name: str
    label: str
    inputs: tuple = ()
    outputs: tuple = ()
    produced: tuple = ()
    after: tuple = ()
    origin: Origin = field(default_factory=Origin)
    parameters: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}/{self.label}"

    @property
    def template(self) -> FakeTemplate:
        return FakeTemplate(f"notebooks/{self.name}.ipynb")


def run(run_id: str, inputs=(), outputs=(), after=(), position: int = 1, parameters: dict | None = None) -> FakeRun:
    name, label = run_id.split("/")
    spec = {"after": list(after)} if after else {}
    return FakeRun(name, label, tuple(inputs), tuple(outputs), origin=Origin(spec, position=position), parameters=parameters or {})


def chain() -> list[FakeRun]:
    return [
        run("prep/base", outputs=["results/clean.csv"]),
        run("train/k1", inputs=["./results/clean.csv", "data/raw.csv"], outputs=["results/model_1.pkl"]),
        run("train/k2", inputs=["results/clean.csv"], outputs=["results/model_2.pkl"]),
        run("evaluate/k1", inputs=["results//model_1.pkl"]),
        run("evaluate/k2", inputs=["results/model_2.pkl"]),
        run("compare/all", after=["evaluate", "train/k2"]),
    ]


def only(*paths):
    return lambda path: path in paths


def test_link_resolves_producers_and_after_in_config_order():
    linked = {r.id: r for r in link_runs(chain(), "papermill_outputs", only("data/raw.csv"))}
    assert linked["train/k1"].inputs == ("results/clean.csv", "data/raw.csv")  # produced inputs normalised, others as written
    assert linked["train/k1"].produced == (("results/clean.csv", "prep/base"),)
    assert linked["evaluate/k1"].produced == (("results/model_1.pkl", "train/k1"),)
    assert linked["compare/all"].after == (
        ("evaluate/k1", "papermill_outputs/evaluate/k1/evaluate_k1.ipynb"),
        ("evaluate/k2", "papermill_outputs/evaluate/k2/evaluate_k2.ipynb"),
        ("train/k2", "papermill_outputs/train/k2/train_k2.ipynb"),
    )
    assert linked["prep/base"].produced == () and linked["prep/base"].after == ()
    assert upstream_ids(linked["compare/all"]) == ["evaluate/k1", "evaluate/k2", "train/k2"]


def test_after_names_each_run_once():
    runs = [run("a/x"), run("b/y", after=["a", "a/x"])]
    (_, b) = link_runs(runs, "out", only())
    assert [run_id for run_id, _ in b.after] == ["a/x"]


def test_an_input_nobody_writes_and_that_does_not_exist_is_one_sentence():
    with pytest.raises(SweepError, match=r"input file 'results/clean.csv' does not exist and no run declares it as an output"):
        link_runs([run("train/k1", inputs=["results/clean.csv"])], "out", only())


def test_after_naming_no_template_or_run_lists_the_templates():
    runs = [run("evaluate/k1"), run("compare/all", after=["evaluate/k9"])]
    with pytest.raises(SweepError) as err:
        link_runs(runs, "out", only())
    assert "'after' names 'evaluate/k9'" in str(err.value) and "templates: compare, evaluate" in str(err.value)


def test_a_run_with_after_may_not_set_upstream_itself():
    runs = [run("evaluate/k1"), run("compare/all", after=["evaluate"], parameters={"upstream": []})]
    with pytest.raises(SweepError, match=r"run compare/all sets parameter 'upstream', which 'after' fills"):
        link_runs(runs, "out", only())
    link_runs([run("compare/all", parameters={"upstream": []})], "out", only())  # without `after` it is an ordinary parameter


def test_an_output_claimed_twice_names_both_runs_and_where():
    runs = [run("a/one", outputs=["results/x.csv"], position=1), run("b/two", outputs=["results/x.csv"], position=2)]
    with pytest.raises(SweepError) as err:
        producers(runs, "out")
    text = str(err.value)
    assert text.startswith("config/config.yaml: run #2:") and "run b/two and by run a/one (config/config.yaml: run #1)" in text


def test_an_output_that_is_another_runs_notebook_is_refused():
    runs = [run("a/one"), run("b/two", outputs=["out/a/one/a_one.ipynb"])]
    with pytest.raises(SweepError, match=r"is in the output folder 'out', which nbsweep manages"):
        producers(runs, "out")


@pytest.mark.parametrize(
    ("path", "what"),
    [("notebooks/a.ipynb", "the template of run a/one"), ("config/config.yaml", "a config file"), (".snakemake/x", "Snakemake's")],
)
def test_an_output_that_nbsweep_reads_is_refused(path, what):
    runs = [run("a/one"), run("b/two", outputs=[path])]
    with pytest.raises(SweepError, match=what):
        producers(runs, "out")


@pytest.mark.parametrize(
    ("runs", "cycle"),
    [
        ([run("a/x", inputs=["a.csv"], outputs=["a.csv"])], "a/x -> a/x"),
        ([run("a/x", inputs=["b.csv"], outputs=["a.csv"]), run("b/y", inputs=["a.csv"], outputs=["b.csv"])], "a/x -> b/y -> a/x"),
        (
            [run("a/x", after=["c"]), run("b/y", after=["a/x"]), run("c/z", inputs=["b.csv"]), run("d/w", outputs=["b.csv"], after=["b"])],
            "->",
        ),
    ],
)
def test_a_cycle_is_named(runs, cycle):
    with pytest.raises(SweepError) as err:
        link_runs(runs, "out", only())
    assert "form a cycle" in str(err.value) and cycle in str(err.value)


def test_check_acyclic_names_only_the_cycle_not_the_path_into_it():
    runs = [
        FakeRun("entry", "e", produced=(("x", "a/x"),)),
        FakeRun("a", "x", after=(("b/y", "t"),)),
        FakeRun("b", "y", after=(("a/x", "t"),)),
    ]
    with pytest.raises(SweepError) as err:
        check_acyclic(runs)
    assert "runs b/y -> a/x -> b/y form a cycle" in str(err.value) or "runs a/x -> b/y -> a/x form a cycle" in str(err.value)
    assert "entry/e" not in str(err.value)


def test_a_deep_chain_is_checked_without_recursion():
    runs = [FakeRun("r", "0")] + [FakeRun("r", str(i), produced=((f"f{i}", f"r/{i - 1}"),)) for i in range(1, 5000)]
    check_acyclic(runs)


def test_fill_outputs_fills_grid_keys_normalises_and_drops_duplicates():
    spec = {"outputs": ["results/model_{k}.pkl", "./results//model_{k}.pkl", "results/{k}/m.txt"]}
    assert fill_outputs(spec, {"k": 2}, fill, "c.yaml: run #1") == ("results/model_2.pkl", "results/2/m.txt")
    assert fill_outputs({}, {"k": 2}, fill, "c.yaml: run #1") == ()


def test_fill_outputs_refuses_literal_braces_unknown_keys_and_paths_outside():
    where = "c.yaml: run #1"
    with pytest.raises(SweepError, match=r"output file 'results/\{raw\}.txt' has braces in its name"):
        fill_outputs({"outputs": ["results/{{raw}}.txt"]}, {}, fill, where)
    with pytest.raises(SweepError, match=r"names \{depth\}, which is not a grid key"):
        fill_outputs({"outputs": ["results/{depth}.txt"]}, {"k": 1}, fill, where)
    for path in ("/abs/x.csv", "../x.csv", "results/../../x.csv"):
        with pytest.raises(SweepError, match="outside the project folder"):
            fill_outputs({"outputs": [path]}, {}, fill, where)


def test_fill_outputs_accepts_names_that_only_start_with_two_dots():
    """``..cache/x.csv`` and ``...csv`` are inside the project folder."""
    assert fill_outputs({"outputs": ["..cache/x.csv", "...csv"]}, {}, fill, "c.yaml: run #1") == ("..cache/x.csv", "...csv")


BASE = 'import json\n\n\ndef f(x):\n    """Double x."""\n    return {"v": x * 2}\n\n\nprint(json.dumps(f(3)))'


@pytest.mark.parametrize(
    "same",
    [
        "# a comment\nimport json\ndef f(x):\n    '''Double x.'''\n    return {'v': x*2}  # why\nprint(json.dumps( f(3) ))",
        'import json\n\n\ndef f(\n    x,\n):\n    """Double x."""\n    return {\n        "v": x * 2,\n    }\n\n\nprint(json.dumps(f(3)))\n\n',
        "import json\ndef f(x):\n    u'''Double x.'''\n    return {'v': (x * 2)}\nprint(json.dumps(f(3)))",
    ],
    ids=["comments and quotes", "black-style wrapping", "parentheses and u prefix"],
)
def test_python_code_counts_by_its_parsed_form(same):
    assert code_digest(code_notebook(same)) == code_digest(code_notebook(BASE))
    assert code_digest(code_notebook(BASE, "", "# only a comment\n\n", new_markdown_cell("prose"))) == code_digest(code_notebook(BASE))


@pytest.mark.parametrize(
    "changed",
    [BASE.replace("x * 2", "x * 3"), BASE.replace("Double x.", "Triple x."), BASE.replace("f(3)", "f(3.0)"), BASE + "\nprint(True)"],
    ids=["expression", "docstring", "int vs float literal", "added statement"],
)
def test_real_code_changes_count(changed):
    assert code_digest(code_notebook(changed)) != code_digest(code_notebook(BASE))


def test_tags_kernel_and_cell_boundaries_still_count():
    tagged = new_code_cell("x = 1", metadata={"tags": ["parameters"]})
    assert code_digest(code_notebook(tagged)) != code_digest(code_notebook("x = 1"))
    assert code_digest(code_notebook("x = 1", "y = 2")) != code_digest(code_notebook("x = 1\ny = 2"))
    assert code_digest(code_notebook("x = 1")) != code_digest(code_notebook("x = 1", metadata=R))
    empty_tagged = new_code_cell("", metadata={"tags": ["parameters"]})
    assert code_digest(code_notebook(empty_tagged, "x = 1")) != code_digest(code_notebook("x = 1"))  # papermill injects after it


def test_outputs_and_metadata_do_not_count():
    saved = code_notebook(BASE)
    saved.cells[0].outputs = [new_output("stream", name="stdout", text="{}")]
    saved.cells[0].execution_count = 4
    saved.metadata["language_info"] = {"name": "python", "version": "3.12"}
    assert code_digest(saved) == code_digest(code_notebook(BASE))


def test_magics_are_parsed_after_ipython_transformation_and_broken_cells_by_text():
    magic = "%matplotlib inline\n!echo hi\nx = 1"
    assert code_digest(code_notebook(magic)) == code_digest(code_notebook("%matplotlib inline\n!echo hi\n\nx = 1  # note"))
    assert code_digest(code_notebook(magic)) != code_digest(code_notebook(magic.replace("inline", "agg")))
    broken = "def f(:\n    pass"
    assert code_cells(code_notebook(broken)) == [{"code": broken, "tags": []}]
    assert code_digest(code_notebook(broken)) != code_digest(code_notebook(broken + "  # text counts"))


def test_other_languages_count_by_text_and_skip_blank_cells():
    assert code_digest(code_notebook("x <- 1", "  \n", metadata=R)) == code_digest(code_notebook("x <- 1", metadata=R))
    assert code_digest(code_notebook("x <- 1", metadata=R)) != code_digest(code_notebook("x <- 1  # note", metadata=R))


def test_legacy_digest_is_the_text_digest_of_before():
    assert legacy_code_digest(code_notebook(BASE)) != legacy_code_digest(code_notebook(BASE + "  # comment"))
    saved = code_notebook(BASE)
    saved.cells[0].outputs = [new_output("stream", name="stdout", text="{}")]
    assert legacy_code_digest(saved) == legacy_code_digest(code_notebook(BASE)) != code_digest(code_notebook(BASE))


PERCENT = '# %% [markdown]\n# A script template\n\n# %% tags=["parameters"]\nn = 2\n\n# %%\nprint(n * 21)\n'


def test_a_percent_script_reads_like_the_notebook_it_stands_for(tmp_path):
    path = tmp_path / "t.py"
    path.write_text(PERCENT)
    template = read_template(str(path))
    assert [c.cell_type for c in template.nb.cells] == ["markdown", "code", "code"]
    assert template.has_parameters_cell and template.declared_parameters == ["n"] and template.language == "python"
    ipynb = tmp_path / "t.ipynb"
    nbformat.write(jupytext.reads(PERCENT, fmt="py:percent"), ipynb)
    assert template.code_digest == code_digest(read_notebook(str(ipynb)))
    path.write_text(PERCENT.replace("A script template", "Reworded prose").replace("n = 2", "n = 2  # default"))
    assert read_template(str(path)).code_digest == template.code_digest
    path.write_text(PERCENT.replace("n * 21", "n * 22"))
    assert read_template(str(path)).code_digest != template.code_digest


def test_an_r_script_is_an_r_template(tmp_path):
    path = tmp_path / "t.R"
    path.write_text('# %% tags=["parameters"]\nn <- 2\n\n# %%\nprint(n)\n')
    assert read_template(str(path)).language == "R"


def test_other_extensions_are_refused_in_one_sentence(tmp_path):
    (tmp_path / "t.txt").write_text("x = 1")
    with pytest.raises(
        SweepError, match=r"notebook .*t\.txt is neither a Jupyter notebook \(\.ipynb\) nor a text notebook jupytext reads \(\.py, \.R"
    ):
        read_template(str(tmp_path / "t.txt"))


def test_the_schema_accepts_exactly_the_template_extensions(tmp_path):
    for suffix in (".ipynb", *TEXT_EXTENSIONS):
        validate({"runs": [{"notebook": f"n/t{suffix}", "label": "a"}]}, tmp_path / "c.yaml", SCHEMA)
    for suffix in (".txt", ".ipynb.bak", ".pyc"):
        with pytest.raises(SweepError, match=r"run #1 \('a'\): notebook 'n/t.*' is neither a Jupyter notebook"):
            validate({"runs": [{"notebook": f"n/t{suffix}", "label": "a"}]}, tmp_path / "c.yaml", SCHEMA)


@pytest.mark.parametrize(
    "entry, sentence",
    [
        (
            "{notebook: nb/t.ipynb, label: a, secrets: {token: NOT_SET_ANYWHERE}}",
            "secret 'token' comes from environment variable NOT_SET_ANYWHERE, which is not set",
        ),
        (
            "{notebook: nb/t.ipynb, label: a, secrets: {tokn: API_TOKEN}}",
            "secret 'tokn' is not declared in the parameters cell of nb/t.ipynb",
        ),
        (
            "{notebook: nb/t.ipynb, label: a, parameters: {token: x}, secrets: {token: API_TOKEN}}",
            "'token' is given both as a parameter and as a secret",
        ),
        ("{notebook: nb/plain.ipynb, label: a, secrets: {token: API_TOKEN}}", "need a cell tagged 'parameters' in nb/plain.ipynb"),
        ("{notebook: nb/jl.ipynb, label: a, secrets: {token: API_TOKEN}}", "work in Python and R templates only, and nb/jl.ipynb is julia"),
        ("{notebook: nb/t.ipynb, label: a, secrets: {token: 'not a name'}}", "'secrets.token'"),
    ],
    ids=["unset variable", "undeclared", "also a parameter", "no parameters cell", "language", "bad variable name"],
)
def test_bad_secrets_are_one_sentence_at_planning(secret_templates, monkeypatch, entry, sentence):
    monkeypatch.setenv("API_TOKEN", "x")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(SweepError, match=r"run #1 \('a'\): .*" + re.escape(sentence)):
        plan(secret_templates, f"runs: [{entry}]")


def test_the_executed_notebook_reads_secrets_in_the_kernel(secret_templates):
    nb = read_notebook("nb/t.ipynb")
    executed = with_secrets(nb, {"token": "API_TOKEN"})
    assert (
        executed.cells[0].source
        == 'token = ""\nn = 1\ntoken = __import__("os").environ["API_TOKEN"]  # secret: from environment variable API_TOKEN'
    )
    assert nb.cells[0].source == 'token = ""\nn = 1'  # the template as read is untouched
    r = with_secrets(read_notebook("nb/r.ipynb"), {"token": "API_TOKEN"})
    assert r.cells[0].source.endswith('token <- Sys.getenv("API_TOKEN")  # secret: from environment variable API_TOKEN')
    assert with_secrets(nb, {}) is nb and with_secrets(nb, None) is nb


def test_an_accepted_record_keeps_the_original_and_stays_consistent(tmp_path):
    made = records.Provenance("old-code", "python3", {"x": 1}, {"data.csv": "aaa"})
    plan = records.Provenance("new-code", "python3", {"x": 1}, {"data.csv": "bbb"})
    nb = new_notebook(cells=[])
    records.stamp(nb, "t/a", made, None)
    record = records.accepted(nb.metadata["nbsweep"], plan, "2024-01-01T00:00:00+0000")
    assert records.is_accepted(record) and not records.is_accepted(nb.metadata["nbsweep"])
    assert record["accepted_from"]["fingerprint"] == made.fingerprint and record["accepted_from"]["template_code"] == "old-code"
    path = tmp_path / "t_a.ipynb"
    nb.metadata["nbsweep"] = record
    nbformat.write(nb, path)
    assert records.recorded(path).fingerprint == plan.fingerprint
    again = records.accepted(record, records.Provenance("newer", "python3", {"x": 1}, {"data.csv": "bbb"}), "later")
    assert again["accepted_from"] == record["accepted_from"]  # the notebook was still executed from the first one


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "sub").mkdir(parents=True)
    for name in ("b.csv", "a.csv", "sub/c.csv", "notes.txt"):
        (tmp_path / "data" / name).write_text(name)
    (tmp_path / "data" / "d.csv").mkdir()  # a folder that matches: not a file
    return tmp_path


def write_template(path: Path, parameters: str, language: str = "python", kernel: str = "python3") -> str:
    cell = new_code_cell(parameters, metadata={"tags": ["parameters"]})
    meta = {"kernelspec": {"name": kernel, "display_name": kernel, "language": language}, "language_info": {"name": language}}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[cell], metadata=meta), path)
    return str(path)


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_glob_grid_is_the_sorted_matching_files(folder):
    spec = {"label": "{data.stem}", "grid": {"data": {"glob": "data/**/*.csv"}}}
    assert labelled_points(spec, "c: run #1") == [
        ("a", {"data": "data/a.csv"}),
        ("b", {"data": "data/b.csv"}),
        ("c", {"data": "data/sub/c.csv"}),
    ]


def test_a_glob_grid_without_a_label_is_labelled_by_stem(folder):
    spec = {"grid": {"data": {"glob": "data/*.csv"}, "depth": [1]}}
    assert [label for label, _ in labelled_points(spec, "w")] == ["a_depth1", "b_depth1"]


def test_an_empty_glob_names_its_pattern(folder):
    with pytest.raises(SweepError, match=r"c: run #1: grid key 'data': glob 'data/\*.parquet' matches no file"):
        labelled_points({"grid": {"data": {"glob": "data/*.parquet"}}}, "c: run #1")


def test_patterns_take_paths_apart_and_keep_doubled_braces():
    point = {"data": "data/sub/iris.csv", "depth": 3}
    assert fill("{data.stem}-d{depth}", point, "label", "w") == "iris-d3"
    assert fill("{data.name}", point, "label", "w") == "iris.csv"
    assert fill("raw/{{x}}/{depth}", point, "input", "w") == "raw/{x}/3"
    with pytest.raises(
        SweepError, match=r"w: input 'data/\{dataset\}.csv' names \{dataset\}, which is not a grid key \(grid keys: data, depth\)"
    ):
        fill("data/{dataset}.csv", point, "input", "w")


def test_run_inputs_are_filled_patterns_then_glob_values_each_once():
    spec = {"inputs": ["data/{data.stem}.meta", "shared.txt", "{data}"], "grid": {"data": {"glob": "*.csv"}, "n": [1]}}
    assert run_inputs(spec, {"data": "x.csv", "n": 1}, "w") == ("data/x.meta", "shared.txt", "x.csv")


def test_a_glob_value_is_an_input_of_its_run_only(folder):
    template = write_template(folder / "nb" / "t.ipynb", "data = ''")
    config = load_config(
        [config_file(folder, f"runs: [{{notebook: {template}, label: '{{data.stem}}', grid: {{data: {{glob: data/*.csv}}}}}}]")], SCHEMA
    )
    runs = Planner(config, kernels={"python3"}).plan()
    assert [(run.label, run.inputs, run.parameters) for run in runs] == [
        ("a", ("data/a.csv",), {"data": "data/a.csv"}),
        ("b", ("data/b.csv",), {"data": "data/b.csv"}),
    ]


@pytest.mark.parametrize(
    ("declared_type", "value", "mismatch"),
    [
        ("int", 3, None),
        ("int", True, "bool"),
        ("int", 2.5, "float"),
        ("int", "3", "str"),
        ("float", 3, None),
        ("float", False, "bool"),
        ("str", [1], "list"),
        ("list", "a", "str"),
        ("tuple", [1], None),
        ("dict", {"a": 1}, None),
        ("bool", 1, "int"),
        ("int", None, "null"),
        ("None", {"any": 1}, None),  # a None default: any type
        ("Optional[int]", None, None),
        ("int | None", "x", "str"),
        ("typing.List[int]", [1], None),
        ("Dict[str, int]", [], "list"),
        ("Union[int, str]", "x", None),
        ("Any", 1.5, None),
        ("Path", 1, None),  # not a JSON kind: not checked
        ("'str'", 1, None),
    ],
)
def test_type_mismatch(declared_type, value, mismatch):
    assert type_mismatch(declared_type, value) == mismatch


def test_python_declarations_read_annotations_defaults_and_help():
    found = python_declarations(
        "count: int = 3  # how many\nmaybe: int | None = None\nrate = 0.5\nitems = [\n 1,\n]  # list\nn = len('x')\nimport os"
    )
    assert [(p.name, p.type_name, p.default, p.help) for p in found] == [
        ("count", "int", "3", "how many"),
        ("maybe", "int | None", "None", ""),
        ("rate", "float", "0.5", ""),
        ("items", "list", "[\n 1,\n]", "list"),
        ("n", "None", "len('x')", ""),
    ]
    assert python_declarations("%matplotlib inline\nx = 1") is None


def test_a_python_cell_with_magics_is_read_by_papermill(tmp_path):
    nb = nbformat.read(write_template(tmp_path / "t.ipynb", "%matplotlib inline\nx = 1\ny: str = 'a'"), as_version=4)
    assert [(p.name, p.type_name) for p in declared(nb, "python3", "python")] == [("x", "int"), ("y", "str")]


def test_the_types_of_defaults_are_checked_per_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = write_template(tmp_path / "nb" / "t.ipynb", "depth: int = 3\nname = 'x'")
    path = config_file(tmp_path, f"defaults: {{parameters: {{name: 1}}}}\nruns: [{{notebook: {template}, label: a}}]")
    with pytest.raises(SweepError, match=r"run #1 \('a'\): run t/a gives parameter 'name' an int \(1\), but .*t.ipynb declares it str"):
        Planner(load_config([path], SCHEMA), kernels={"python3"}).plan()
    path.write_text(f"defaults: {{check_types: false, parameters: {{name: 1}}}}\nruns: [{{notebook: {template}, label: a}}]")
    assert Planner(load_config([path], SCHEMA), kernels={"python3"}).plan()[0].parameters == {"name": 1}


def test_r_assignments_are_top_level_statements_only():
    source = (
        "# options\n"
        'csv_path <- "data/a.csv"  # where\n'
        "n = 3\n"
        'opts <- list(\n  a = 1,\n  b = "x)#"\n)\n'
        "x == 3\n"
        "y < -1\n"
        "`odd name` <- TRUE\n"
        'msg <- "two\nlines = not a name"\n'
        "n <- 4\n"
        ".hidden = NULL\n"
    )
    assert r_assignments(source) == [
        ("csv_path", '"data/a.csv"'),
        ("opts", 'list( a = 1, b = "x)#" )'),
        ("odd name", "TRUE"),
        ("msg", '"two lines = not a name"'),
        ("n", "4"),
        (".hidden", "NULL"),
    ]


def test_r_templates_declare_their_names_and_other_languages_declare_nothing(tmp_path):
    r = nbformat.read(write_template(tmp_path / "r.ipynb", 'a <- 1\nb = "x"', "R", "ir"), as_version=4)
    assert [p.name for p in declared(r, "ir", "R")] == ["a", "b"]
    julia = nbformat.read(write_template(tmp_path / "j.ipynb", "a = 1", "julia", "julia-1.9"), as_version=4)
    assert declared(julia, "julia-1.9", "julia") is None


def test_an_undeclared_r_name_is_refused_and_other_languages_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = write_template(tmp_path / "nb" / "r.ipynb", 'a <- 1\nb = "x"', "R", "ir")
    julia = write_template(tmp_path / "nb" / "j.ipynb", "a = 1", "julia", "julia")
    path = config_file(
        tmp_path, f"runs: [{{notebook: {julia}, label: j, parameters: {{zz: 1}}}}, {{notebook: {r}, label: r, parameters: {{c: 1}}}}]"
    )
    with pytest.raises(
        SweepError, match=r"run #2 \('r'\): parameter 'c' is not declared in the parameters cell of .*r.ipynb \(declared: a, b\)"
    ):
        Planner(load_config([path], SCHEMA), kernels={"ir", "julia"}).plan()


def test_nbsweeps_r_translator_inspects_without_warning_and_writes_r_strings(caplog):
    translator = translators().find_translator("ir", "R")
    with caplog.at_level(logging.WARNING):
        found = translator.inspect({"source": "alpha <- 1\nbeta = 'b'"})
    assert [p.name for p in found] == ["alpha", "beta"]
    assert not caplog.records
    assert translator.translate('it\'s "q" \\ é\n\x01') == '"it\'s \\"q\\" \\\\ é\\n\\U{1}"'
    assert translator.translate({"k": [None, True, 1.5]}) == 'list("k" = list(NULL, TRUE, 1.5))'
    assert r_string("日本 🚀") == '"日本 🚀"'


def test_config_overrides_are_yaml_1_2_merged_as_snakemake_merges_them():
    assert parse_overrides(["output_dir=out2", "defaults={parameters: {seed: 1, lr: 1e-3, flag: yes}}", "defaults={parameters: {seed: 2}}"]) == {
        "output_dir": "out2",
        "defaults": {"parameters": {"seed": 2, "lr": 0.001, "flag": "yes"}},
    }  # fmt: skip
    assert parse_overrides(["output_dir="]) == {"output_dir": None}


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        ("runs=[]", "--config runs=[]: runs cannot be given with --config"),
        ("defaults={a: 1, a: 2}", "--config defaults={a: 1, a: 2}: key 'a' appears twice"),
        ("defaults={1: x}", "key 1 under 'defaults' is not text"),
        ("defaults={a: [}", "the value is not valid YAML"),
    ],
)
def test_config_overrides_that_cannot_be_read_are_refused(entry, phrase):
    with pytest.raises(SweepError, match=phrase.replace("[", r"\[").replace("{", r"\{").replace("}", r"\}")):
        parse_overrides([entry])


def test_config_overrides_apply_over_every_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = write_template(tmp_path / "nb" / "t.ipynb", "seed = 0\nname = 'x'")
    path = config_file(
        tmp_path,
        f"mlflow: {{experiment: e}}\ndefaults: {{threads: 2, parameters: {{name: y}}}}\nruns: [{{notebook: {template}, label: a}}]",
    )
    config = load_config([path], SCHEMA, ["output_dir=out2", "defaults={parameters: {seed: 1}}", "mlflow={tracking_uri: file:x}"])
    assert config.output_dir == "out2"
    assert config.defaults["threads"] == 2 and config.defaults["parameters"] == {"name": "y", "seed": 1}
    assert (config.mlflow.experiment, config.mlflow.tracking_uri) == ("e", "file:x")
    with pytest.raises(SweepError, match=r"--config outdir=x: unknown key 'outdir' \(allowed: .*output_dir"):
        load_config([path], SCHEMA, ["outdir=x"])
    with pytest.raises(SweepError, match=r"--config defaults=\{threads: 0\}: 'defaults.threads'"):
        load_config([path], SCHEMA, ["defaults={threads: 0}"])


def test_priorities_follow_config_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = write_template(tmp_path / "nb" / "t.ipynb", "n = 0")
    path = config_file(
        tmp_path, f"runs: [{{notebook: {template}, label: z}}, {{notebook: {template}, label: 'n{{n}}', grid: {{n: [3, 1]}}}}]"
    )
    sweep = Sweep(".", Planner(load_config([path], SCHEMA), kernels={"python3"}).plan())
    assert priorities(sweep) == {("t", "z"): 3, ("t", "n3"): 2, ("t", "n1"): 1}


def test_grid_size_is_the_product_of_value_counts_without_expanding():
    assert grid_size({}) == 1  # a run without a grid
    assert grid_size({"a": [1, 2, 3], "b": ["x", "y"]}) == 6
    assert grid_size({key: range(10) for key in "abcdefghijklmnopqrst"}) == 10**20  # ranges are never listed


def test_check_run_count_refuses_a_grid_and_a_total_beyond_the_bound():
    check_run_count({"a": range(MAX_RUNS)}, 0, "c.yaml: run #1")
    check_run_count({}, MAX_RUNS - 1, "c.yaml: run #2")
    with pytest.raises(
        SweepError, match=r"^c.yaml: run #1: its grid gives 100,001 runs, the product of its keys' value counts \(a: 100,001\)"
    ):
        check_run_count({"a": range(MAX_RUNS + 1)}, 0, "c.yaml: run #1")
    with pytest.raises(SweepError, match=r"^c.yaml: run #3: its grid's 2 runs bring the config to 100,001 runs"):
        check_run_count({"a": [1, 2]}, MAX_RUNS - 1, "c.yaml: run #3")
    with pytest.raises(SweepError, match=r"^c.yaml: run #4: it brings the config to 100,001 runs"):
        check_run_count({}, MAX_RUNS, "c.yaml: run #4")


def test_the_total_counts_glob_grids_before_expanding_any_and_lists_each_pattern_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        (tmp_path / f"d{i}.csv").write_text("x")
    spec = {"notebook": "n.ipynb", "grid": {"data": {"glob": "*.csv"}, "a": list(range(20_000))}}
    one = Planner(SweepConfig(runs=[RunSpec("c.yaml", 1, spec)]), kernels=set())
    one.check_run_counts()
    listed = one.glob_files("data", "*.csv", "w")
    assert listed == ["d0.csv", "d1.csv", "d2.csv"] and one.glob_files("data", "*.csv", "w") is listed
    two = Planner(SweepConfig(runs=[RunSpec("c.yaml", 1, spec), RunSpec("c.yaml", 2, spec)]), kernels=set())
    with pytest.raises(SweepError, match=r"^c.yaml: run #2: its grid's 60,000 runs bring the config to 120,000 runs"):
        two.check_run_counts()


def test_lone_surrogates_are_found_in_keys_and_values_at_any_depth():
    assert lone_surrogate("héllo ✓ \U0001f600") is None
    assert lone_surrogate("ab\udcff") == "\udcff"
    doc = {"runs": [{"label": "ok", "parameters": {"x": ["fine", {"deep": "a\ud800"}]}}]}
    assert non_utf8_text(doc) == (("runs", 0, "parameters", "x", 1, "deep"), False, "a\ud800", "\ud800")
    assert non_utf8_text({"runs": [{"grid": {"\udfff": [1]}}]}) == (("runs", 0, "grid"), True, "\udfff", "\udfff")
    shared = ["ok"]
    assert non_utf8_text({"a": shared, "b": shared, "c": 1.5}) is None  # an alias is walked once
    assert dotted(["parameters", "x", 1, "deep"]) == "parameters.x[1].deep"


def test_check_text_is_utf8_names_the_run_the_place_and_the_fix():
    doc = {"runs": [{"label": "ok"}, {"label": "b\ud800", "parameters": {"x": 1}}]}
    with pytest.raises(SweepError) as refused:
        check_text_is_utf8(doc, "c.yaml")
    assert str(refused.value) == (
        r"c.yaml: run #2 ('b\ud800'): the value 'b\ud800' of 'label' holds the lone surrogate \ud800, which UTF-8 "
        r"(job files, notebooks, the summary) cannot store; write the character itself instead of its \u escape, or remove it"
    )
    with pytest.raises(SweepError, match=r"^c.yaml: key '\\udc80' at the top level holds"):
        check_text_is_utf8({"\udc80": 1}, "c.yaml")
    check_text_is_utf8({"runs": [{"label": "é\t"}]}, "c.yaml")


def test_changed_cell_names_the_templates_first_cell_that_differs_from_what_ran():
    params = new_code_cell("z = 1", metadata={"tags": ["parameters"]})
    template = code_notebook(new_markdown_cell("intro"), params, "y = z * 2", "print(y)")
    injected = new_code_cell("z = 2", metadata={"tags": ["injected-parameters"]})
    ran = code_notebook(new_markdown_cell("intro"), params, injected, "y = z * 2  # formatting only", "print(y)")
    assert changed_cell(template, ran) == ""  # papermill's cell and formatting do not count
    edited = code_notebook(new_markdown_cell("intro"), params, "y = z * 3", "print(y)")
    assert changed_cell(edited, ran) == "cell 3 (`y = z * 3`)"
    longer = code_notebook(new_markdown_cell("intro"), params, "y = z * 2", "print(y)", "print('more')")
    assert changed_cell(longer, ran) == "cell 5 (`print('more')`)"
    shorter = code_notebook(new_markdown_cell("intro"), params, "y = z * 2")
    assert changed_cell(shorter, ran) == "a cell after cell 3 was removed"


def test_a_templates_imports_are_read_from_its_code_cells_in_order_until_something_runs():
    from nbsweep.model.templates import Template

    nb = code_notebook(
        new_code_cell("x = 0\nname: str = 'a'", metadata={"tags": ["parameters"]}),  # literal assignments run nothing
        "import pandas as pd, numpy\nfrom matplotlib import pyplot as plt\nimport matplotlib.pyplot",
        new_markdown_cell("import not_code\nprint(1)"),
        '"""Docstring."""\n%matplotlib inline\nimport seaborn',  # magics: parsed as IPython transforms them
        "from __future__ import annotations\nfrom . import sibling\nfrom .pkg import thing\nimport numpy",
        "try:\n    import optional_one\n    HAVE = True\nexcept ImportError:\n    import fallback_one\nelse:\n    import after_try\nfinally:\n    pass",
        "import os\nos.environ['OMP_NUM_THREADS'] = '1'\nimport after_environment",  # might import differently now
        "import in_a_later_cell",
    )
    assert Template("t.ipynb", nb).imports == (
        "pandas",
        "numpy",
        "matplotlib",
        "matplotlib.pyplot",
        "seaborn",
        "optional_one",
        "after_try",
        "os",
    )


@pytest.mark.parametrize(
    "first",
    [
        "def f():\n    import inside_function",
        "if True:\n    import inside_if",
        "sys.path.insert(0, 'lib')",
        "%env A=1",
        "!pip install x",
        "x = compute()",
        "import broken (",
        "try:\n    import a\n    setup()\nexcept ImportError:\n    pass",
    ],
)
def test_no_import_after_a_statement_that_runs_something_is_taken(first):
    from nbsweep.model.templates import Template

    expected = ("a",) if first.startswith("try") else ()
    assert Template("t.ipynb", code_notebook(first, "import later")).imports == expected


def test_a_template_in_another_language_imports_nothing():
    from nbsweep.model.templates import Template

    assert Template("t.ipynb", code_notebook("import pandas", "library(x)", metadata=R)).imports == ()


def test_preload_is_the_templates_imports_unless_configured(templates):
    nbformat.write(code_notebook("import fractions\nfrom xml.dom import minidom"), templates / "nb" / "imp.ipynb")
    runs = plan(
        templates,
        """
runs:
  - {notebook: nb/imp.ipynb, label: auto}
  - {notebook: nb/imp.ipynb, label: "true", preload: true}
  - {notebook: nb/imp.ipynb, label: off, preload: false}
  - {notebook: nb/imp.ipynb, label: empty, preload: []}
  - {notebook: nb/imp.ipynb, label: listed, preload: [pandas]}
""",
    )
    assert [(r.label, r.preload, r.preload_imports) for r in runs] == [
        ("auto", ("fractions", "xml.dom"), True),
        ("true", ("fractions", "xml.dom"), True),
        ("off", (), False),
        ("empty", (), False),
        ("listed", ("pandas",), False),
    ]


def test_preload_must_be_true_false_or_a_list(templates):
    with pytest.raises(SweepError, match="run #1 \\('a'\\): 'preload' must be boolean or array, not str 'pandas'"):
        plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, preload: pandas}]")
