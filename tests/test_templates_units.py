"""Unit tests of the template model: text notebooks, the parsed-code digest, secrets and accepted records."""

import json
import re

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbsweep import packaged
from nbsweep.errors import SweepError
from nbsweep.model.config import load_config, load_schema, validate
from nbsweep.model.formats import TEXT_EXTENSIONS
from nbsweep.model.plan import Planner
from nbsweep.model.secrets import with_secrets
from nbsweep.model.templates import code_cells, code_digest, legacy_code_digest, read_notebook, read_template
from nbsweep.provenance import records, state
from nbsweep.provenance.accept import blocking
from nbsweep.provenance.jobs import job_document
from nbsweep.provenance.records import Change, explain
from nbsweep.provenance.state import planned

SCHEMA = load_schema(packaged.SCHEMA)
PY = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
R = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}}


def notebook(*cells, metadata=PY):
    """A notebook of code cells (strings) and other cells (given as nodes)."""
    return new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells], metadata=metadata)


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
    assert code_digest(notebook(same)) == code_digest(notebook(BASE))
    assert code_digest(notebook(BASE, "", "# only a comment\n\n", new_markdown_cell("prose"))) == code_digest(notebook(BASE))


@pytest.mark.parametrize(
    "changed",
    [BASE.replace("x * 2", "x * 3"), BASE.replace("Double x.", "Triple x."), BASE.replace("f(3)", "f(3.0)"), BASE + "\nprint(True)"],
    ids=["expression", "docstring", "int vs float literal", "added statement"],
)
def test_real_code_changes_count(changed):
    assert code_digest(notebook(changed)) != code_digest(notebook(BASE))


def test_tags_kernel_and_cell_boundaries_still_count():
    tagged = new_code_cell("x = 1", metadata={"tags": ["parameters"]})
    assert code_digest(notebook(tagged)) != code_digest(notebook("x = 1"))
    assert code_digest(notebook("x = 1", "y = 2")) != code_digest(notebook("x = 1\ny = 2"))
    assert code_digest(notebook("x = 1")) != code_digest(notebook("x = 1", metadata=R))
    empty_tagged = new_code_cell("", metadata={"tags": ["parameters"]})
    assert code_digest(notebook(empty_tagged, "x = 1")) != code_digest(notebook("x = 1"))  # papermill injects after it


def test_outputs_and_metadata_do_not_count():
    saved = notebook(BASE)
    saved.cells[0].outputs = [new_output("stream", name="stdout", text="{}")]
    saved.cells[0].execution_count = 4
    saved.metadata["language_info"] = {"name": "python", "version": "3.12"}
    assert code_digest(saved) == code_digest(notebook(BASE))


def test_magics_are_parsed_after_ipython_transformation_and_broken_cells_by_text():
    magic = "%matplotlib inline\n!echo hi\nx = 1"
    assert code_digest(notebook(magic)) == code_digest(notebook("%matplotlib inline\n!echo hi\n\nx = 1  # note"))
    assert code_digest(notebook(magic)) != code_digest(notebook(magic.replace("inline", "agg")))
    broken = "def f(:\n    pass"
    assert code_cells(notebook(broken)) == [{"code": broken, "tags": []}]
    assert code_digest(notebook(broken)) != code_digest(notebook(broken + "  # text counts"))


def test_other_languages_count_by_text_and_skip_blank_cells():
    assert code_digest(notebook("x <- 1", "  \n", metadata=R)) == code_digest(notebook("x <- 1", metadata=R))
    assert code_digest(notebook("x <- 1", metadata=R)) != code_digest(notebook("x <- 1  # note", metadata=R))


def test_legacy_digest_is_the_text_digest_of_before():
    assert legacy_code_digest(notebook(BASE)) != legacy_code_digest(notebook(BASE + "  # comment"))
    saved = notebook(BASE)
    saved.cells[0].outputs = [new_output("stream", name="stdout", text="{}")]
    assert legacy_code_digest(saved) == legacy_code_digest(notebook(BASE)) != code_digest(notebook(BASE))


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


@pytest.fixture
def secret_templates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    params = new_code_cell('token = ""\nn = 1', metadata={"tags": ["parameters"]})
    nbformat.write(notebook(params, "print(n)"), tmp_path / "nb" / "t.ipynb")
    nbformat.write(notebook("print(1)"), tmp_path / "nb" / "plain.ipynb")
    r_params = new_code_cell('token <- ""', metadata={"tags": ["parameters"]})
    nbformat.write(notebook(r_params, metadata={**R, "kernelspec": {**R["kernelspec"], "name": "python3"}}), tmp_path / "nb" / "r.ipynb")
    jl = new_code_cell('token = ""', metadata={"tags": ["parameters"]})
    nbformat.write(
        notebook(jl, metadata={"kernelspec": {"name": "python3", "display_name": "J", "language": "julia"}}), tmp_path / "nb" / "jl.ipynb"
    )
    return tmp_path


def plan(tmp_path, text):
    (tmp_path / "c.yaml").write_text(text)
    return Planner(load_config([tmp_path / "c.yaml"], SCHEMA), kernels={"python3"}).plan()


def test_secrets_come_from_defaults_and_runs_and_stay_out_of_the_fingerprint(secret_templates, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("OTHER_TOKEN", "other-value")
    plain, secret, other = plan(
        secret_templates,
        """
defaults: {secrets: {token: API_TOKEN}}
runs:
  - {notebook: nb/t.ipynb, label: a, secrets: {}}
  - {notebook: nb/t.ipynb, label: b}
  - {notebook: nb/t.ipynb, label: c, secrets: {token: OTHER_TOKEN}}
""",
    )
    assert (
        plain.secrets == {"token": "API_TOKEN"} and secret.secrets == {"token": "API_TOKEN"} and other.secrets == {"token": "OTHER_TOKEN"}
    )
    made = [state.planned(run, {}) for run in (plain, secret, other)]
    assert made[0].fingerprint == made[1].fingerprint == made[2].fingerprint
    document = json.dumps(job_document(secret, planned(secret, {})))
    assert "API_TOKEN" in document and "s3cr3t-value" not in document


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


def test_only_code_and_input_changes_can_be_accepted():
    made = records.Provenance("c", "python3", {"x": 1}, {"d": "a"})
    assert blocking(records.Provenance("c2", "python3", {"x": 1}, {"d": "b"}).diff(made)) == []
    assert explain(blocking(records.Provenance("c", "python3", {"x": 2}, {"d": "a"}).diff(made))) == ["parameters changed: x 1 → 2"]
    assert blocking(records.Provenance("c", "py2", {"x": 1}, {"d": "a"}).diff(made)) == [Change("kernel", "", "python3", "py2")]
    assert blocking(records.Provenance("c", "python3", {"x": 1}, {"d": None}).diff(made)) == [Change("input", "d", "a", None, "missing")]
