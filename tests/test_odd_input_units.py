"""Pure logic behind the refusals of odd input: grid sizes, text UTF-8
cannot store, names nbsweep keeps for itself, and how refusals quote what users wrote."""

import pytest

from nbsweep.errors import SweepError, printable, quoted
from nbsweep.layout import RESULTS, results_file_named
from nbsweep.model.config import check_text_is_utf8, dotted, lone_surrogate, non_utf8_text
from nbsweep.model.plan import MAX_RUNS, Planner, check_run_count, grid_size
from nbsweep.model.spec import RunSpec, SweepConfig


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
