"""Unit tests of pipelines' pure logic: the run graph (nbsweep.model.pipeline) and its provenance."""

from dataclasses import dataclass, field

import pytest

from nbsweep.canonical import digest
from nbsweep.errors import SweepError
from nbsweep.model.pipeline import check_acyclic, fill_outputs, link, producers, upstream_ids
from nbsweep.model.plan import fill
from nbsweep.provenance.records import FINGERPRINT_KEYS, Provenance, explain, fingerprint


@dataclass(frozen=True)
class Origin:
    spec: dict = field(default_factory=dict)
    source: str = "config/config.yaml"
    position: int = 1

    def where(self) -> str:
        return f"{self.source}: run #{self.position}"


@dataclass(frozen=True)
class FakeTemplate:
    path: str


@dataclass(frozen=True)
class FakeRun:
    """What nbsweep.model.pipeline reads of a planned run."""

    name: str
    label: str
    inputs: tuple = ()
    outputs: tuple = ()
    produced: tuple = ()
    after: tuple = ()
    origin: Origin = field(default_factory=Origin)
    parameters: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}/{self.label}"

    @property
    def template(self) -> FakeTemplate:
        return FakeTemplate(f"notebooks/{self.name}.ipynb")


def run(run_id: str, inputs=(), outputs=(), after=(), position: int = 1, parameters: dict | None = None) -> FakeRun:
    name, label = run_id.split("/")
    spec = {"after": list(after)} if after else {}
    return FakeRun(name, label, tuple(inputs), tuple(outputs), origin=Origin(spec, position=position), parameters=parameters or {})


def chain() -> list[FakeRun]:
    return [
        run("prep/base", outputs=["results/clean.csv"]),
        run("train/k1", inputs=["./results/clean.csv", "data/raw.csv"], outputs=["results/model_1.pkl"]),
        run("train/k2", inputs=["results/clean.csv"], outputs=["results/model_2.pkl"]),
        run("evaluate/k1", inputs=["results//model_1.pkl"]),
        run("evaluate/k2", inputs=["results/model_2.pkl"]),
        run("compare/all", after=["evaluate", "train/k2"]),
    ]


def only(*paths):
    return lambda path: path in paths


def test_link_resolves_producers_and_after_in_config_order():
    linked = {r.id: r for r in link(chain(), "papermill_outputs", only("data/raw.csv"))}
    assert linked["train/k1"].inputs == ("results/clean.csv", "data/raw.csv")  # produced inputs normalised, others as written
    assert linked["train/k1"].produced == (("results/clean.csv", "prep/base"),)
    assert linked["evaluate/k1"].produced == (("results/model_1.pkl", "train/k1"),)
    assert linked["compare/all"].after == (
        ("evaluate/k1", "papermill_outputs/evaluate/k1/evaluate_k1.ipynb"),
        ("evaluate/k2", "papermill_outputs/evaluate/k2/evaluate_k2.ipynb"),
        ("train/k2", "papermill_outputs/train/k2/train_k2.ipynb"),
    )
    assert linked["prep/base"].produced == () and linked["prep/base"].after == ()
    assert upstream_ids(linked["compare/all"]) == ["evaluate/k1", "evaluate/k2", "train/k2"]


def test_after_names_each_run_once():
    runs = [run("a/x"), run("b/y", after=["a", "a/x"])]
    (_, b) = link(runs, "out", only())
    assert [run_id for run_id, _ in b.after] == ["a/x"]


def test_an_input_nobody_writes_and_that_does_not_exist_is_one_sentence():
    with pytest.raises(SweepError, match=r"input file 'results/clean.csv' does not exist and no run declares it as an output"):
        link([run("train/k1", inputs=["results/clean.csv"])], "out", only())


def test_after_naming_no_template_or_run_lists_the_templates():
    runs = [run("evaluate/k1"), run("compare/all", after=["evaluate/k9"])]
    with pytest.raises(SweepError) as err:
        link(runs, "out", only())
    assert "'after' names 'evaluate/k9'" in str(err.value) and "templates: compare, evaluate" in str(err.value)


def test_a_run_with_after_may_not_set_upstream_itself():
    runs = [run("evaluate/k1"), run("compare/all", after=["evaluate"], parameters={"upstream": []})]
    with pytest.raises(SweepError, match=r"run compare/all sets parameter 'upstream', which 'after' fills"):
        link(runs, "out", only())
    link([run("compare/all", parameters={"upstream": []})], "out", only())  # without `after` it is an ordinary parameter


def test_an_output_claimed_twice_names_both_runs_and_where():
    runs = [run("a/one", outputs=["results/x.csv"], position=1), run("b/two", outputs=["results/x.csv"], position=2)]
    with pytest.raises(SweepError) as err:
        producers(runs, "out")
    text = str(err.value)
    assert text.startswith("config/config.yaml: run #2:") and "run b/two and by run a/one (config/config.yaml: run #1)" in text


def test_an_output_that_is_another_runs_notebook_is_refused():
    runs = [run("a/one"), run("b/two", outputs=["out/a/one/a_one.ipynb"])]
    with pytest.raises(SweepError, match=r"is in the output folder 'out', which nbsweep manages"):
        producers(runs, "out")


@pytest.mark.parametrize(
    ("path", "what"),
    [("notebooks/a.ipynb", "the template of run a/one"), ("config/config.yaml", "a config file"), (".snakemake/x", "Snakemake's")],
)
def test_an_output_that_nbsweep_reads_is_refused(path, what):
    runs = [run("a/one"), run("b/two", outputs=[path])]
    with pytest.raises(SweepError, match=what):
        producers(runs, "out")


@pytest.mark.parametrize(
    ("runs", "cycle"),
    [
        ([run("a/x", inputs=["a.csv"], outputs=["a.csv"])], "a/x -> a/x"),
        ([run("a/x", inputs=["b.csv"], outputs=["a.csv"]), run("b/y", inputs=["a.csv"], outputs=["b.csv"])], "a/x -> b/y -> a/x"),
        (
            [run("a/x", after=["c"]), run("b/y", after=["a/x"]), run("c/z", inputs=["b.csv"]), run("d/w", outputs=["b.csv"], after=["b"])],
            "->",
        ),
    ],
)
def test_a_cycle_is_named(runs, cycle):
    with pytest.raises(SweepError) as err:
        link(runs, "out", only())
    assert "form a cycle" in str(err.value) and cycle in str(err.value)


def test_check_acyclic_names_only_the_cycle_not_the_path_into_it():
    runs = [
        FakeRun("entry", "e", produced=(("x", "a/x"),)),
        FakeRun("a", "x", after=(("b/y", "t"),)),
        FakeRun("b", "y", after=(("a/x", "t"),)),
    ]
    with pytest.raises(SweepError) as err:
        check_acyclic(runs)
    assert "runs b/y -> a/x -> b/y form a cycle" in str(err.value) or "runs a/x -> b/y -> a/x form a cycle" in str(err.value)
    assert "entry/e" not in str(err.value)


def test_a_deep_chain_is_checked_without_recursion():
    runs = [FakeRun("r", "0")] + [FakeRun("r", str(i), produced=((f"f{i}", f"r/{i - 1}"),)) for i in range(1, 5000)]
    check_acyclic(runs)


def test_fill_outputs_fills_grid_keys_normalises_and_drops_duplicates():
    spec = {"outputs": ["results/model_{k}.pkl", "./results//model_{k}.pkl", "results/{k}/m.txt"]}
    assert fill_outputs(spec, {"k": 2}, fill, "c.yaml: run #1") == ("results/model_2.pkl", "results/2/m.txt")
    assert fill_outputs({}, {"k": 2}, fill, "c.yaml: run #1") == ()


def test_fill_outputs_refuses_literal_braces_unknown_keys_and_paths_outside():
    where = "c.yaml: run #1"
    with pytest.raises(SweepError, match=r"output file 'results/\{raw\}.txt' has braces in its name"):
        fill_outputs({"outputs": ["results/{{raw}}.txt"]}, {}, fill, where)
    with pytest.raises(SweepError, match=r"names \{depth\}, which is not a grid key"):
        fill_outputs({"outputs": ["results/{depth}.txt"]}, {"k": 1}, fill, where)
    for path in ("/abs/x.csv", "../x.csv", "results/../../x.csv"):
        with pytest.raises(SweepError, match="outside the project folder"):
            fill_outputs({"outputs": [path]}, {}, fill, where)


def test_fill_outputs_accepts_names_that_only_start_with_two_dots():
    """``..cache/x.csv`` and ``...csv`` are inside the project folder."""
    assert fill_outputs({"outputs": ["..cache/x.csv", "...csv"]}, {}, fill, "c.yaml: run #1") == ("..cache/x.csv", "...csv")


# --- provenance ---


def provenance(**changes) -> Provenance:
    base = {"template_code": "c", "kernel": "python3", "parameters": {"k": 1}, "inputs": {"results/m.pkl": "aa"}}
    return Provenance(**{**base, **changes})


def test_a_run_without_after_keeps_the_fingerprint_of_older_records():
    made = provenance()
    assert made.fingerprint == digest({key: made.as_dict()[key] for key in FINGERPRINT_KEYS})
    assert fingerprint({**made.as_dict(), "upstream": {}}) == made.fingerprint
    assert provenance(upstream={"evaluate/k1": "e1"}).fingerprint != made.fingerprint
    assert provenance(upstream={"evaluate/k1": "e1"}).fingerprint != provenance(upstream={"evaluate/k1": "e2"}).fingerprint


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
