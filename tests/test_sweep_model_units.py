"""Unit tests of the sweep model's pure logic: file grids, patterns, declared types, R declarations, --config."""

import logging
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from nbsweep import packaged
from nbsweep.errors import SweepError
from nbsweep.model.config import load_config, load_schema, parse_overrides
from nbsweep.model.parameters import declared, python_declarations, r_assignments, r_string, translators, type_mismatch
from nbsweep.model.plan import Planner, fill, labelled_points, run_inputs
from nbsweep.provenance.sweep import Sweep
from nbsweep.smk.hooks import priorities

SCHEMA = load_schema(packaged.SCHEMA)


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


# --- grids over files, label and input patterns ---


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


# --- declared types ---


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


# --- R and other languages ---


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


# --- --config ---


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


# --- config order ---


def test_priorities_follow_config_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    template = write_template(tmp_path / "nb" / "t.ipynb", "n = 0")
    path = config_file(
        tmp_path, f"runs: [{{notebook: {template}, label: z}}, {{notebook: {template}, label: 'n{{n}}', grid: {{n: [3, 1]}}}}]"
    )
    sweep = Sweep(".", Planner(load_config([path], SCHEMA), kernels={"python3"}).plan())
    assert priorities(sweep) == {("t", "z"): 3, ("t", "n3"): 2, ("t", "n1"): 1}
