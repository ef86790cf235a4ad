"""Parameters reach the notebook intact, as data, never through a shell (behaviour 11)."""

import json

from conftest import stdout_of

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
