"""nbsweep.smk: what Snakemake calls into: config files on its command line, recovery, unwritable folders."""

import base64
import json
from pathlib import Path

import pytest

from nbsweep.adapters.snakemake_internals import CONFIGFILE_ERRORS, command_line_configfiles
from nbsweep.model.config import configfile_problem
from nbsweep.provenance.records import Provenance
from nbsweep.smk.workdir import marker_path, remove_stale_locks, remove_stale_markers

from .builders import write


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


def test_runs_into_a_folder_that_cannot_be_written_are_blocked_with_the_runs_waiting_for_them(monkeypatch):
    from nbsweep.smk import writable

    class FakeSweep:
        output_dir = "out"
        runs = {key: key for key in [("t", "stale"), ("t", "current"), ("t", "fine"), ("c", "one"), ("c", "two")]}
        ups = {("c", "one"): [("t", "stale")], ("c", "two"): [("c", "one")]}

        def upstream_keys(self, run):
            return self.ups.get(run, [])

        def is_current(self, run):
            return run != ("t", "stale")

    frozen = {Path("out/t/stale"), Path("out/t/current")}
    monkeypatch.setattr(writable, "unwritable", lambda folder, seen: folder if folder in frozen else None)
    blocked = writable.blocked_runs(FakeSweep())
    assert sorted(blocked) == [("c", "one"), ("c", "two"), ("t", "stale")]  # a current run in such a folder stays as it is
    assert blocked[("t", "stale")].status == "failed" and "out/t/stale cannot be written" in blocked[("t", "stale")].error_message
    assert [blocked[key].status for key in [("c", "one"), ("c", "two")]] == ["not run", "not run"]
    assert blocked[("c", "two")].error_message == "waits for c/one, which failed"


def test_a_folder_that_does_not_exist_yet_is_as_writable_as_the_nearest_one_above(tmp_path):
    from nbsweep.smk.writable import unwritable

    seen: dict = {}
    assert unwritable(tmp_path / "out" / "t" / "a", seen) is None and seen == {tmp_path: True}
