"""nbsweep's foundations: canonical JSON, errors, layout, and record() inside templates."""

import math

import pytest
from nbformat.v4 import new_output

from nbsweep import MIME, plain
from nbsweep.canonical import canonical_json, digest
from nbsweep.errors import SweepError, printable, quoted
from nbsweep.layout import RESULTS, results_file_named
from nbsweep.messages import say
from nbsweep.results import executed

from .builders import write_notebook


def test_canonical_json_ignores_key_order_but_not_types():
    assert canonical_json({"b": 1, "a": {"y": 2, "x": 1}}) == canonical_json({"a": {"x": 1, "y": 2}, "b": 1})
    assert digest({"x": 1}) != digest({"x": 1.0}) != digest({"x": "1"})
    with pytest.raises(TypeError):
        canonical_json({"when": object()})


def test_metric_values_become_plain_json():
    np = pytest.importorskip("numpy")
    assert plain(np.float64(0.5), "a") == 0.5 and type(plain(np.int64(3), "b")) is int
    assert plain(np.array([1, 2]), "c") == [1, 2]
    assert plain(float("nan"), "d") is None and plain(-math.inf, "e") is None
    assert plain({"x": (1, np.float32(2))}, "f") == {"x": [1, 2.0]}
    with pytest.raises(TypeError, match=r"metric 'g' \(object\) is not a JSON value"):
        plain(object(), "g")
    with pytest.raises(TypeError, match="'h.k'"):
        plain({"k": {1, 2}}, "h")


def metrics_output(values: dict):
    return new_output("display_data", data={MIME: values, "text/plain": "nbsweep metrics"})


def test_metrics_come_from_outputs_in_order_and_not_from_sources(tmp_path):
    source = f'display({{"{MIME}": {{"fake": 1}}}}, raw=True)'
    path = write_notebook(
        tmp_path / "a.ipynb",
        [metrics_output({"acc": 0.5, "n": 3}), metrics_output({"acc": 0.75, "nested": {"k": [1]}})],
        {"nbsweep": {"status": "ok"}},
        source=source,
    )
    metadata, metrics = executed.read_result(path)
    assert metrics == {"acc": 0.75, "n": 3, "nested": {"k": [1]}}
    assert metadata["nbsweep"] == {"status": "ok"}
    assert executed.read_result(tmp_path / "missing.ipynb") == ({}, {})


def test_only_nbsweeps_own_results_names_collide_ignoring_case():
    assert RESULTS == ("summary.csv", "summary.json", "index.html")
    assert results_file_named("Index.HTML") == "index.html" and results_file_named("summary.json") == "summary.json"
    assert results_file_named("index") is None and results_file_named("summary.csv.bak") is None


def test_refusals_quote_and_escape_what_users_wrote():
    assert quoted("a\nb\x1b[31m") == r"'a\nb\x1b[31m'"
    assert quoted("it's") == '"it\'s"' and quoted("é ✓") == "'é ✓'"
    assert printable("run 'a\nb'\x1b]0;x\x07 \u202e \ud800 é") == r"run 'a\nb'\x1b]0;x\x07 \u202e \ud800 é"
    assert str(SweepError("notebook a\r\nb.ipynb does not exist")) == r"notebook a\r\nb.ipynb does not exist"
    assert str(SweepError("label " + quoted("x\ny") + " is bad")) == r"label 'x\ny' is bad"  # escaped once, not twice


class Writes:
    """A stream that records each write it is given (an unbuffered stderr passes each one to the fd)."""

    def __init__(self):
        self.writes: list[str] = []
        self.flushed = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushed += 1


def test_a_line_for_the_user_is_one_write_so_jobs_side_by_side_cannot_split_it(monkeypatch):
    stream = Writes()
    monkeypatch.setattr("sys.stderr", stream)
    print("nbsweep: run t/a ok", file=stream)
    assert stream.writes == ["nbsweep: run t/a ok", "\n"]  # print: two writes another job's line can come between
    stream.writes.clear()
    say("nbsweep: run t/a ok")
    assert stream.writes == ["nbsweep: run t/a ok\n"] and stream.flushed == 1
