"""Parameters reach the notebook intact, as data, never through a shell (behaviour 11)."""

import json

from conftest import one_sentence, stdout_of

NASTY = {
    "quotes": "it's \"quoted\" and 'single'",
    "shell": "a; rm -rf / && echo $(whoami) `id` $HOME | cat > /tmp/x",
    "braces": "{label} {0} {{}} %s %(x)s",
    "newlines": "line1\nline2\r\n\ttabbed\\n",
    "unicode": "héllo wörld — 日本語 🚀",
    "empty": "",
    "int": -42,
    "big": 12345678901234567890,
    "float": 3.25e-7,
    "bools": [True, False],
    "null": None,
    "nested": {"a": {"b": [1, "two", {"c": None}]}, "k;ey": "$(v)"},
}


def test_every_value_arrives_intact(project):
    project.notebook(
        "echo",
        ["import json\nprint('ECHO' + json.dumps(value, sort_keys=True))"],
        "value = None",
    )
    project.write_config(
        {"runs": [{"notebook": "notebooks/echo.ipynb", "label": name, "parameters": {"value": value}} for name, value in NASTY.items()]}
    )
    project.snakemake(cores=2)
    for name, value in NASTY.items():
        line = next(line for line in stdout_of(project.target("echo", name)).splitlines() if line.startswith("ECHO"))
        assert json.loads(line[4:]) == value, name
    assert not (project.root / "tmp").exists()


NONE_ECHO = ["print('SEES', repr(name), repr(maybe))"]


def test_none_reaches_a_parameter_whose_type_comes_from_its_default(project):
    project.notebook("named", NONE_ECHO, "name = 'a'\nmaybe: int | None = 1\ncount: int = 1")
    project.write_config({"runs": [{"notebook": "notebooks/named.ipynb", "label": "none", "parameters": {"name": None, "maybe": None}}]})
    project.snakemake()
    assert "SEES None None" in stdout_of(project.target("named", "none"))


def test_none_against_an_annotation_that_excludes_it_is_one_sentence(project):
    project.notebook("named", NONE_ECHO, "name = 'a'\nmaybe: int | None = 1\ncount: int = 1")
    project.write_config({"runs": [{"notebook": "notebooks/named.ipynb", "label": "none", "parameters": {"count": None}}]})
    assert one_sentence(project.snakemake(check=False)) == (
        "nbsweep: config/config.yaml: run #1 ('none'): run named/none gives parameter 'count' null, but notebooks/named.ipynb "
        "annotates it int, which excludes None; give an int value, annotate it int | None, or set check_types: false."
    )
    assert not project.out.exists()
