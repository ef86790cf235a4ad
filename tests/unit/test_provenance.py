"""nbsweep.provenance: fingerprints, structured changes, run states, job files, accept."""

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from nbsweep import layout
from nbsweep.canonical import digest
from nbsweep.provenance import kept_aside, records, state
from nbsweep.provenance.accept import blocking
from nbsweep.provenance.jobs import job_document
from nbsweep.provenance.records import (
    FINGERPRINT_KEYS,
    Change,
    Provenance,
    explain,
    fingerprint,
    parameter_changes,
    parameter_phrase,
    recorded,
    stamp,
)
from nbsweep.provenance.state import planned

from .builders import notebook, plan


def test_fingerprint_uses_only_what_decides_the_output():
    doc = {"template_code": "t", "kernel": "python3", "parameters": {"a": 1}, "inputs": {}, "timeout": 5, "run": "x/y"}
    assert fingerprint(doc) == fingerprint({**doc, "timeout": None, "run": "z/w"})
    assert fingerprint(doc) != fingerprint({**doc, "parameters": {"a": 2}})


def test_provenance_fingerprint_diff_and_records(templates, tmp_path):
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 5}]")
    made = planned(run, {})
    assert made.fingerprint == fingerprint(made.as_dict())  # the hash older notebooks were stamped with
    (retimed,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, timeout: 50}]")
    assert planned(retimed, {}).fingerprint == made.fingerprint  # timeout is not provenance
    (changed,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 3}}]")
    assert explain(planned(changed, {}).diff(made)) == ["parameters changed: alpha 1 → 3"]  # the template's alpha = 1
    assert explain(made.diff(planned(changed, {}))) == ["parameters changed: alpha 3 → 1"]

    nb = new_notebook(cells=[new_code_cell("x = 1")])
    stamp(nb, run.id, made, None)
    target = tmp_path / "t_a.ipynb"
    nbformat.write(nb, target)
    assert recorded(target) == made
    text = target.read_text()
    target.write_text(text[: len(text) // 2])  # truncated
    assert recorded(target) is None
    nb.metadata["nbsweep"]["parameters"] = {"alpha": 9}  # edited: no longer its fingerprint
    nbformat.write(nb, target)
    assert recorded(target) is None


def test_flatten_nested_mappings_with_dotted_keys():
    params = {"config": {"data": {"path": "a.csv"}, "target": None}, "lr": 0.1, "empty": {}, "grid": [1, 2]}
    assert records.flatten(params, "params.") == {
        "params.config.data.path": "a.csv",
        "params.config.target": None,
        "params.lr": 0.1,
        "params.empty": {},
        "params.grid": [1, 2],
    }


def test_parameter_changes_name_each_difference():
    old = {"lr": 0.1, "n": 1, "cfg": {"a": 1, "gone": 2}}
    new = {"lr": 0.01, "n": 1.0, "cfg": {"a": 1, "b": "x"}}
    assert parameter_changes(old, new) == [
        Change("parameter", "lr", 0.1, 0.01),
        Change("parameter", "n", 1, 1.0),
        Change("parameter", "cfg.b", None, "x", "added"),
        Change("parameter", "cfg.gone", 2, None, "removed"),
    ]
    assert [parameter_phrase(change) for change in parameter_changes(old, new)] == [
        "lr 0.1 → 0.01",
        "n 1 → 1.0",
        'cfg.b added ("x")',
        "cfg.gone removed (was 2)",
    ]


def test_reasons_cover_code_kernel_parameters_and_inputs():
    made = Provenance("c1", "python3", {"x": 1}, {"a.csv": "1", "b.csv": "2"})
    planned = Provenance("c2", "other", {"x": 2}, {"a.csv": "9", "c.csv": "3"})
    assert planned.diff(made) == [
        Change("template code", "", "c1", "c2"),
        Change("kernel", "", "python3", "other"),
        Change("parameter", "x", 1, 2),
        Change("input", "a.csv", "1", "9"),
        Change("input", "c.csv", None, "3", "added"),
        Change("input", "b.csv", "2", None, "removed"),
    ]
    assert explain(planned.diff(made)) == [
        "template code changed",
        "kernel changed: python3 → other",
        "parameters changed: x 1 → 2",
        "input a.csv changed",
        "input c.csv added",
        "input b.csv removed",
    ]
    assert explain(made.diff(made)) == ["fingerprint changed"]


def provenance(**changes) -> Provenance:
    base = {"template_code": "c", "kernel": "python3", "parameters": {"k": 1}, "inputs": {"results/m.pkl": "aa"}}
    return Provenance(**{**base, **changes})


def test_a_run_without_after_keeps_the_fingerprint_of_older_records():
    made = provenance()
    assert made.fingerprint == digest({key: made.as_dict()[key] for key in FINGERPRINT_KEYS})
    assert fingerprint({**made.as_dict(), "upstream": {}}) == made.fingerprint
    assert provenance(upstream={"evaluate/k1": "e1"}).fingerprint != made.fingerprint
    assert provenance(upstream={"evaluate/k1": "e1"}).fingerprint != provenance(upstream={"evaluate/k1": "e2"}).fingerprint


def test_the_order_of_keys_inside_parameter_values_is_provenance_and_sorted_mappings_keep_their_fingerprint():
    """papermill injects mappings in config order, which a loop over them sees; the parameters' own order is not fingerprinted."""
    given = {"z": 1, "opts": {"b": 1, "a": [{"y": 0, "x": 0}, {"k": 1}]}, "sorted": {"a": 1, "b": {"c": 1, "d": 2}}}
    assert records.key_order(given) == {"opts": ["b", "a"], "opts.a[0]": ["y", "x"]}
    plain = provenance(parameters={"opts": {"a": 1, "b": 2}})
    assert plain.fingerprint == digest({key: plain.as_dict()[key] for key in FINGERPRINT_KEYS})  # as before key order counted
    swapped = provenance(parameters={"opts": {"b": 2, "a": 1}}, key_order={"opts": ["b", "a"]})
    assert swapped.fingerprint != plain.fingerprint
    assert explain(swapped.diff(plain)) == ["parameters changed: opts keys reordered (a, b → b, a)"]
    assert explain(plain.diff(swapped)) == ["parameters changed: opts keys reordered (b, a → a, b)"]
    grown = provenance(parameters={"opts": {"b": 2, "a": 1, "c": 0}}, key_order={"opts": ["b", "a", "c"]})
    assert explain(grown.diff(swapped)) == ["parameters changed: opts.c added (0)"]  # the added key says it
    beside = provenance(parameters={"opts": {"b": 2, "a": 1}, "opts2": 1}, key_order={"opts": ["b", "a"]})
    assert explain(beside.diff(plain)) == ["parameters changed: opts2 added (1), opts keys reordered (a, b → b, a)"]
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    stamp(nb, "t/a", swapped, None)
    reread = nbformat.reads(nbformat.writes(nb), as_version=4)  # nbformat writes mappings' keys sorted
    assert list(reread.metadata.nbsweep["parameters"]["opts"]) == ["a", "b"]
    assert records.provenance_in(reread.metadata.nbsweep).fingerprint == swapped.fingerprint


def test_diff_names_the_producer_of_a_changed_missing_or_added_input():
    producers = {"results/m.pkl": "train/k2", "results/n.pkl": "train/k3"}
    made = provenance()
    assert explain(provenance(inputs={"results/m.pkl": "bb"}).diff(made, producers)) == [
        "input results/m.pkl changed, produced by train/k2"
    ]
    assert explain(provenance(inputs={"results/m.pkl": None}).diff(made, producers)) == [
        "input results/m.pkl is missing, produced by train/k2"
    ]
    assert explain(provenance(inputs={"results/m.pkl": "aa", "results/n.pkl": "cc"}).diff(made, producers)) == [
        "input results/n.pkl added, produced by train/k3"
    ]
    assert explain(provenance(inputs={"results/m.pkl": "bb"}).diff(made)) == ["input results/m.pkl changed"]


def test_diff_explains_upstream_changes():
    made = provenance(upstream={"evaluate/k1": "e1", "evaluate/k2": "e2"})
    now = provenance(upstream={"evaluate/k1": "e9", "evaluate/k2": None, "evaluate/k3": "e3"})
    assert explain(now.diff(made)) == [
        "upstream run evaluate/k1 executed again",
        "upstream run evaluate/k2 has not run",
        "runs after evaluate/k3 now",
    ]
    assert explain(provenance(upstream={"evaluate/k1": "e1"}).diff(made)) == ["no longer runs after evaluate/k2"]
    assert explain(provenance().diff(made)) == ["no longer runs after evaluate/k1", "no longer runs after evaluate/k2"]


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


def test_only_code_and_input_changes_can_be_accepted():
    made = records.Provenance("c", "python3", {"x": 1}, {"d": "a"})
    assert blocking(records.Provenance("c2", "python3", {"x": 1}, {"d": "b"}).diff(made)) == []
    assert explain(blocking(records.Provenance("c", "python3", {"x": 2}, {"d": "a"}).diff(made))) == ["parameters changed: x 1 → 2"]
    assert blocking(records.Provenance("c", "py2", {"x": 1}, {"d": "a"}).diff(made)) == [Change("kernel", "", "python3", "py2")]
    assert blocking(records.Provenance("c", "python3", {"x": 1}, {"d": None}).diff(made)) == [Change("input", "d", "a", None, "missing")]


def test_execution_reason_is_the_runs_own_state_then_its_upstream_then_forcing():
    stale = state.RunState("t/a", state.STALE, "parameters changed: z 2.5 → 2.0", (Change("parameter", "z", 2.5, 2.0),))
    assert state.execution_reason(stale, ["u/x"], forced=True) == "parameters changed: z 2.5 → 2.0"
    assert state.execution_reason(state.RunState("t/a", state.MISSING, "not run yet"), [], False) == "never run"
    failed = state.RunState("t/a", state.FAILED, "ValueError: ...", (Change("input", "d.csv", "1", "2"),))
    assert state.execution_reason(failed, [], False) == "failed last time; changed since: input d.csv changed"
    assert state.execution_reason(state.RunState("t/a", state.INTERRUPTED, "interrupted"), [], False) == "interrupted last time"
    current = state.RunState("t/a", state.UP_TO_DATE)
    assert state.execution_reason(current, ["u/x"], forced=True) == "upstream run u/x executes"
    assert state.execution_reason(current, ["u/x", "u/y"], False) == "upstream runs u/x, u/y execute"
    assert state.execution_reason(state.RunState("t/a", state.NOT_RUN, "waits for u/x, which failed"), ["u/x"], False) == (
        "upstream run u/x executes"
    )
    assert state.execution_reason(current, [], forced=True) == "forced"


def test_a_run_in_a_cache_keeps_its_state_and_says_the_next_invocation_restores_it():
    stale = state.RunState("t/a", state.STALE, "parameters changed: z 2.5 → 2.0", (Change("parameter", "z", 2.5, 2.0),))
    cached = state.in_cache(stale, "s3://team/runs")
    assert (cached.state, cached.changes, cached.cached) == (state.STALE, stale.changes, "s3://team/runs")
    assert cached.detail == "parameters changed: z 2.5 → 2.0 (in cache s3://team/runs: the next invocation restores it)"
    assert state.in_cache(state.RunState("t/b", state.MISSING), "/c").detail == "(in cache /c: the next invocation restores it)"


def test_an_interrupted_run_is_interrupted_until_its_next_outcome(templates):
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    files = layout.RunFiles.of("out", run.name, run.label)
    files.target.parent.mkdir(parents=True)
    files.interrupted.touch()
    assert state.run_state(run, "out", {}) == state.RunState(
        run.id, state.INTERRUPTED, "interrupted before it ever finished (no earlier notebook)"
    )
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    stamp(nb, run.id, planned(run, {}), None)
    nbformat.write(nb, files.previous)
    assert state.run_state(run, "out", {}).detail == f"interrupted (previous good notebook kept at {files.previous})"
    nbformat.write(nb, files.target)  # its next execution succeeded (and removed the marker; a stray one does not count)
    assert state.run_state(run, "out", {}).state == state.UP_TO_DATE


def test_a_parameter_given_its_default_keeps_the_fingerprint_and_explains_nothing(templates):
    (bare,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    (given,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 1}}]")  # the template's alpha = 1
    (as_float,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 1.0}, check_types: false}]")
    made, plan_now = planned(bare, {}), planned(given, {})
    assert made.defaults == {"alpha": 1, "beta": 2} and plan_now.parameters == {"alpha": 1}
    assert plan_now.fingerprint == made.fingerprint and plan_now.diff(made) == [
        Change("fingerprint", "", made.fingerprint, made.fingerprint)
    ]
    assert planned(as_float, {}).fingerprint != made.fingerprint  # 1.0 is not the default 1
    assert explain(planned(as_float, {}).diff(made)) == ["parameters changed: alpha 1 → 1.0"]


def test_a_record_of_the_older_form_is_current_when_its_given_parameters_over_the_defaults_are_planned(templates, tmp_path):
    (bare,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    (given,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 1}}]")
    (other,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 3}}]")
    now = planned(bare, {})
    older = {key: value for key, value in now.as_dict().items() if key != "defaults"}  # what the previous rule stamped
    older["fingerprint"] = digest({key: older[key] for key in FINGERPRINT_KEYS})  # it hashed the given parameters only
    nb = new_notebook(cells=[new_code_cell("x = 1")], metadata={"nbsweep": older})
    target = tmp_path / "t_a.ipynb"
    nbformat.write(nb, target)
    made = recorded(target)
    assert made is not None and made.defaults is None and made.fingerprint == older["fingerprint"] != now.fingerprint
    assert state.matches(made, now) and state.matches(made, planned(given, {}))
    assert not state.matches(made, planned(other, {}))
    assert explain(planned(other, {}).diff(state.in_current_form(made, planned(other, {})))) == ["parameters changed: alpha 1 → 3"]
    recoded = Provenance("other code", now.kernel, {}, {})  # another template code: the older record's defaults are unknown
    assert not state.matches(made, recoded) and explain(recoded.diff(made)) == ["template code changed"]


def test_a_record_keeps_the_defaults_apart_and_hashes_them_under_the_given_parameters():
    made = provenance(parameters={"k": 1}, defaults={"k": 0, "bins": 40})
    assert made.effective_parameters == {"k": 1, "bins": 40}
    assert made.fingerprint == provenance(parameters={"k": 1, "bins": 40}, defaults={"bins": 40}).fingerprint
    assert made.fingerprint == provenance(parameters={"k": 1, "bins": 40}, defaults={}).fingerprint  # no known defaults: as before
    assert Provenance.from_dict(made.as_dict()) == made
    assert Provenance.from_dict({**made.as_dict(), "defaults": None}).defaults is None


def test_an_edited_default_the_run_does_not_override_is_a_parameter_change_accept_refuses(templates):
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    made = planned(run, {})
    nbformat.write(notebook(code="alpha = 5\nbeta = 2", tags=["parameters"]), templates / "nb" / "t.ipynb")
    (edited,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    changes = planned(edited, {}).diff(made)
    assert explain(changes) == ["template code changed", "parameters changed: alpha 1 → 5"]
    assert blocking(changes) == [Change("parameter", "alpha", 1, 5)]


def stamped(path, run, made) -> str:
    """Write an executed notebook of ``run`` made from ``made`` at ``path``; its execution id."""
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    stamp(nb, run.id, made, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return nb.metadata["nbsweep"]["execution"]


def test_a_notebook_from_other_settings_is_kept_aside_and_put_back_when_it_is_current_again(templates, tmp_path):
    (mine,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 1}}]")
    (theirs,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a, parameters: {alpha: 2}}]")
    files = layout.RunFiles(tmp_path / "out" / "t" / "a" / "t_a.ipynb")
    old = stamped(files.good, mine, planned(mine, {}))  # the good link of the notebook a rerun replaces
    new = stamped(files.target, theirs, planned(theirs, {}))
    files.good_log.write_text("old log")
    files.html.write_text("old rendering")
    assert kept_aside.keep_aside(files, recorded(files.target))
    assert not files.good.exists() and files.previous_log.read_text() == "old log"
    assert files.previous_html.read_text() == "old rendering" and not files.html.exists()
    assert state.kept_aside_is_current(mine, files.target, {}) and not state.kept_aside_is_current(theirs, files.target, {})
    assert not state.is_current(mine, files.target, {})

    files.log.write_text("new log")
    files.html.write_text("new rendering")
    kept_aside.restore(files)
    assert records.read_record(files.target)["execution"] == old and records.read_record(files.previous)["execution"] == new
    assert files.log.read_text() == "old log" and files.previous_log.read_text() == "new log"
    assert files.html.read_text() == "old rendering" and files.previous_html.read_text() == "new rendering"
    assert records.read_record(files.good)["execution"] == old  # a failing rerun keeps the notebook now in place
    assert state.is_current(mine, files.target, {}) and not [p for p in files.target.parent.iterdir() if ".swap." in p.name]


def test_a_rerun_from_the_same_settings_keeps_nothing_aside(templates, tmp_path):
    (run,) = plan(templates, "runs: [{notebook: nb/t.ipynb, label: a}]")
    files = layout.RunFiles(tmp_path / "t_a.ipynb")
    stamped(files.good, run, planned(run, {}))
    stamped(files.target, run, planned(run, {}))  # forced: executed anew from the same provenance
    assert not kept_aside.keep_aside(files, recorded(files.target)) and files.good.exists() and not files.previous.exists()
