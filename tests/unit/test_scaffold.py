"""nbsweep.cli.scaffold: the config `nbsweep init` writes."""

import yaml

from nbsweep.cli import scaffold
from nbsweep.packaged import SCHEMA

from .builders import write_notebook


def test_the_starter_config_names_every_key_a_run_may_have(tmp_path):
    write_notebook(tmp_path / "t.ipynb", [], {})
    text = scaffold.config_text(tmp_path, [tmp_path.joinpath("t.ipynb").relative_to(tmp_path)])
    comments = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    keys = yaml.safe_load(SCHEMA.read_text())["properties"]["runs"]["items"]["properties"]
    assert {"outputs", "after", "render", "preload", "secrets"} <= set(keys)
    for key in keys:
        assert f" {key}," in comments or f" {key};" in comments, key
    assert yaml.safe_load(text)["runs"] == [{"notebook": "t.ipynb", "label": "default"}]
