"""One-off runs: papermill's parameter flags (nbsweep.model.papermill_flags), the default label and
the entry marking a run folder (nbsweep.provenance.one_off), the Snakemake command (nbsweep.smk.launch)."""

import base64
import sys
from pathlib import Path

import pytest

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.model.papermill_flags import Flags, parameters, settings, unsupported
from nbsweep.packaged import SNAKEFILE
from nbsweep.provenance import one_off
from nbsweep.results import orphans
from nbsweep.smk import launch


def papermills_parameters(monkeypatch, args: list[str]) -> dict:
    """The parameters papermill's own command line passes to execute_notebook for ``args``."""
    import papermill.cli
    from click.testing import CliRunner

    seen: dict = {}
    monkeypatch.setattr(papermill.cli, "execute_notebook", lambda *a, **k: seen.update(k["parameters"]))
    result = CliRunner().invoke(papermill.cli.papermill, ["in.ipynb", "out.ipynb", *args])
    assert result.exit_code == 0, result.output
    return seen


def flags_of(args: list[str]) -> Flags:
    flags = Flags()
    kinds = {
        "-p": flags.parameters,
        "-r": flags.parameters_raw,
        "-y": flags.parameters_yaml,
        "-f": flags.parameters_file,
        "-b": flags.parameters_base64,
    }
    while args:
        flag, *args = args
        if flag in ("-p", "-r"):
            (name, value), args = args[:2], args[2:]
            kinds[flag].append((name, value))
        else:
            value, *args = args
            kinds[flag].append(value)
    return flags


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "a", "True", "-p", "b", "False", "-p", "c", "None", "-p", "d", "3", "-p", "e", "1e3", "-p", "f", "0.1", "-p", "g", "true"],
        ["-p", "h", "-2", "-p", "i", "007", "-p", "j", "1_000", "-p", "k", "2024-01-01", "-p", "l", " 4 ", "-p", "m", ""],
        ["-r", "a", "3", "-p", "a", "4", "-y", "a: 5"],  # -r wins whatever the order
        ["-y", "{a: 1, b: [1, 2], c: {d: yes}}", "-y", "a: 2"],  # YAML 1.1 (yes is True), the later -y wins
        ["-p", "a", "1", "-y", "a: 2\nb: 2", "-b", base64.b64encode(b"a: 3\nb: 3\nc: 2024-01-01").decode()],  # dates stay text
        ["-y", "", "-y", "~"],  # empty documents: no parameters
    ],
)
def test_parameters_are_what_papermills_command_line_passes(monkeypatch, args):
    assert parameters(flags_of(args)) == papermills_parameters(monkeypatch, args)


def test_parameters_file_comes_before_yaml_and_pairs(monkeypatch, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: file\nb: file\nc: file\n")
    args = ["-p", "a", "pair", "-f", str(path), "-y", "b: yaml"]
    assert parameters(flags_of(args)) == papermills_parameters(monkeypatch, args) == {"a": "pair", "b": "yaml", "c": "file"}


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["-y", "a: [1"], "-y 'a: [1' is not valid YAML at line 1, column 6; write a mapping of names to values, e.g. 'lr: 0.1'"),
        (["-y", "[1, 2]"], "-y '[1, 2]' is a YAML list, not a mapping of names to values; write e.g. 'lr: 0.1'"),
        (["-y", "1: a"], "-y '1: a': parameter name '1' is not text; quote it or use a Python name"),
        (["-f", "/no/such.yaml"], "parameters file /no/such.yaml does not exist; check the path given with -f"),
        (["-b", "%%%"], "-b '%%%' is not base64-encoded UTF-8 text; encode the YAML mapping, e.g. with base64"),
        (["-p", "lr", "nan"], "parameter 'lr' is a number that is not finite, which nbsweep cannot pass to a run; give text, numbers, booleans, lists or mappings"),
        (["-y", "b: !!binary aGk="], "parameter 'b' is bytes data, which nbsweep cannot pass to a run; give text, numbers, booleans, lists or mappings"),
    ],
)  # fmt: skip
def test_flags_papermill_could_not_use_or_nbsweep_cannot_pass_on_are_one_sentence(args, sentence):
    with pytest.raises(SweepError) as err:
        parameters(flags_of(args))
    assert str(err.value) == sentence


def test_kernel_and_execution_timeout_are_the_configs_kernel_and_timeout():
    assert settings(Flags(kernel="py2", execution_timeout="600")) == {"kernel": "py2", "timeout": 600}
    assert settings(Flags()) == {}
    with pytest.raises(SweepError, match="--execution-timeout '1.5s' is not a whole number of seconds"):
        settings(Flags(execution_timeout="1.5s"))


def test_papermills_other_flags_are_refused_with_the_reason():
    assert unsupported(["run", "t.ipynb", "-p", "a", "1", "--cwd=/tmp"]) == (
        "nbsweep run does not take papermill's --cwd: runs execute in the project folder, so that relative paths work in every run"
    )
    assert "--no-report-mode" in unsupported(["run", "t.ipynb", "--no-report-mode"])
    assert unsupported(["run", "t.ipynb", "-k", "py2", "--execution-timeout", "5", "--label", "x"]) is None


def test_default_label_is_made_from_the_parameters_and_path_safe():
    assert one_off.default_label({"lr": 0.1, "name": "abc"}) == "lr0.1_nameabc"
    assert one_off.default_label({"data": "data/a b.csv", "flag": None}) == "datadata-a-b.csv_flagNone"
    assert one_off.default_label({}) == one_off.DEFAULT_LABEL
    assert len(one_off.default_label({"text": "x" * 500})) == 128


def test_a_one_off_runs_folder_is_no_orphan(tmp_path):
    files = layout.RunFiles.of(str(tmp_path), "t", "mine")
    files.target.parent.mkdir(parents=True)
    files.target.write_text("{}")
    assert orphans.orphans(str(tmp_path), {}) == [files.target.parent]
    files.one_off.write_text('{"runs": []}')
    assert orphans.orphans(str(tmp_path), {}) == []
    assert one_off.markers(str(tmp_path)) == [files.one_off]


def test_snakemake_command_targets_the_run_with_the_projects_config_and_the_users_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target, files = Path("out/t/l/t_l.ipynb"), [Path("config/config.yaml"), Path("out/t/l/t_l.one-off.json")]
    python = [sys.executable, "-m", "snakemake", str(target)]
    assert launch.command(target, files, ["-n"]) == [
        *python, "--snakefile", str(SNAKEFILE), "--cores", "all", "--configfile", *map(str, files), "-n"
    ]  # fmt: skip
    (tmp_path / "Snakefile").write_text("")
    assert launch.command(target, files, ["-c4"]) == [*python, "--configfile", *map(str, files), "-c4"]
    with pytest.raises(SweepError, match="give --configfile before --"):
        launch.command(target, files, ["--configfile=other.yaml"])
    with pytest.raises(SweepError, match="cannot pass --config on to Snakemake"):
        launch.command(target, files, ["--config", "output_dir=elsewhere"])
