"""index.html's charts in real headless Chromium: after a real 3x3 grid sweep, a real sweep over
two datasets (at 1280 px), and summaries made up for what real sweeps rarely show."""

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from chromium import chromium_page, needs_chromium

from nbsweep.results import index, summary

pytestmark = needs_chromium


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path / "chromium-profile") as opened:
        yield opened


GRID = ["from nbsweep import record\nif a == 3 and b == 30:\n    raise ValueError('bad corner')\nrecord(score=a * b + seed, half=a / 2)"]


@pytest.fixture
def grid(project):
    project.notebook("grid", GRID, "a = 1\nb = 10\nseed = 0")
    project.write_config({"runs": [{"notebook": "notebooks/grid.ipynb", "grid": {"a": [1, 2, 3], "b": [10, 20, 30]}}]})
    project.snakemake(check=False)
    return project


def wait_for_request(page, ending: str) -> list[str]:
    deadline = time.monotonic() + 20
    while not any(url.endswith(ending) for url in page.requests()):
        assert time.monotonic() < deadline, f"no request for {ending}: {page.requests()}"
        page.js("0")  # reads the events that arrived meanwhile
        time.sleep(0.1)
    return page.requests()


def test_a_3x3_grid_has_one_mark_per_run_in_every_chart(grid, page):
    rows = {r["label"]: r for r in json.loads((grid.out / "summary.json").read_text())}
    runs = {f"grid/{label}" for label in rows}
    assert len(runs) == 9 and rows["a3_b30"]["status"] == "failed"
    page.viewport(1400, 900)
    page.open((grid.out / "index.html").as_uri())

    charts = page.js(
        "[...document.querySelectorAll('svg.chart')].map(s => [s.getAttribute('aria-label'), [...s.querySelectorAll('[data-run]')].map(m => m.dataset.run)])"
    )
    assert sorted(label for label, _ in charts) == [
        "half against a",
        "half against b",
        "half by a and b",
        "score against a",
        "score against b",
        "score by a and b",
    ]
    for label, marks in charts:
        assert len(marks) == 9 and set(marks) == runs, label
    assert (
        page.js("[...document.querySelectorAll('[data-run=\"grid/a3_b30\"]')].map(m => m.tagName + '.' + m.getAttribute('class'))").count(
            "path.mark st-failed"
        )
        == 4
    )

    tip = page.js("document.querySelector('svg.chart [data-run=\"grid/a2_b20\"] title').textContent")
    assert tip.splitlines() == ["grid/a2_b20 (ok)", "a = 2", "b = 20", "seed = 0 (default)", "half = 1", "score = 40"]
    # seed is the same in every run: stated once above the table, not a column.
    assert page.js("document.querySelector('section[data-template=grid] .constants').textContent") == "Same in every run: seed = 0 default"
    assert page.js("[...document.querySelectorAll('table.runs th')].map(th => th.textContent)")[:5] == [
        "label",
        "status",
        "files",
        "aparameter",
        "bparameter",
    ]
    # The files column is on screen at 1400 px, and nothing is wider than the window.
    assert page.js("Math.max(...[...document.querySelectorAll('td.files')].map(td => td.getBoundingClientRect().right))") <= 1400
    assert page.js("document.documentElement.scrollWidth") <= 1400

    assert page.errors() == []
    assert all(url.startswith("file://") for url in page.requests()), page.requests()

    # A click on a mark opens that run's notebook (its rendering when there is one).
    failed = rows["a3_b30"]
    opened = failed["html"] or failed["notebook"]
    page.click('svg.chart [data-run="grid/a3_b30"]')
    requests = wait_for_request(page, quote(str(Path(opened).relative_to("papermill_outputs"))))
    assert all(url.startswith("file://") for url in requests), requests


# Two datasets (long paths, rows counted by the notebook) times three values of z.
DATASETS = {"adult": 32561, "bank": 45211}
FOLDER = "data/public/uci_machine_learning_repository/{name}/{name}_full_training_set.csv"
METRICS = ["mean_absolute_error_validation", "root_mean_squared_error_validation", "coefficient_of_determination"]
COUNT = [
    "from nbsweep import record\n"
    "with open(dataset) as f:\n    n_rows = sum(1 for _ in f) - 1\n"
    f"record(n_rows=n_rows, score=n_rows * z / 10000, **{{m: z / (n + 2) for n, m in enumerate({METRICS!r})}})"
]


@pytest.fixture
def two_datasets(project):
    runs = []
    for name, rows in DATASETS.items():
        path = project.root / FOLDER.format(name=name)
        path.parent.mkdir(parents=True)
        path.write_text("x,y\n" + "1,2\n" * rows)
        runs.append(
            {
                "notebook": "notebooks/count.ipynb",
                "label": f"{name}_full_training_set_with_z_equal_to_{{z}}",
                "parameters": {"dataset": FOLDER.format(name=name)},
                "grid": {"z": [1, 2, 3]},
                "inputs": [FOLDER.format(name=name)],
            }
        )
    project.notebook("count", COUNT, "dataset = ''\nz = 0")
    project.write_config({"runs": runs})
    project.snakemake()
    return project


def test_two_parameters_over_two_datasets_are_told_apart_exactly_and_fit_1280_px(two_datasets, page, tmp_path):
    page.viewport(1280, 900)
    page.open((two_datasets.out / "index.html").as_uri())
    assert page.errors() == []

    # score vs z: one colour per dataset, named in the chart's key, each run's mark in its dataset's colour.
    chart = "svg.chart[aria-label='score against z']"
    entries = page.js(f'[...document.querySelectorAll("{chart} .series-legend .entry")].map(e => e.dataset.series)')
    assert entries == [FOLDER.format(name=name) for name in sorted(DATASETS)]
    colours = page.js(f'[...document.querySelectorAll("{chart} .series-legend .key")].map(k => getComputedStyle(k).fill)')
    assert len(set(colours)) == 2
    marks = page.js(f'[...document.querySelectorAll("{chart} [data-run]")].map(m => [m.dataset.run, getComputedStyle(m).fill])')
    assert len(marks) == 6
    for run, fill in marks:
        assert fill == colours[sorted(DATASETS).index(run.split("/")[1].split("_")[0])], run
    assert page.js(f'document.querySelectorAll("{chart} polyline.series").length') == 2

    # The heat map shows the counted rows as recorded, in its cells and its tooltips.
    heatmap = "svg.chart[aria-label='n_rows by dataset and z']"
    cells = page.js(f'[...document.querySelectorAll("{heatmap} text.cell")].map(t => t.textContent)')
    assert sorted(cells) == ["32561"] * 3 + ["45211"] * 3
    tip = page.js(f"document.querySelector(\"{heatmap} [data-run='count/bank_full_training_set_with_z_equal_to_2'] title\").textContent")
    assert f"dataset = {FOLDER.format(name='bank')}" in tip.splitlines() and "n_rows = 45211" in tip.splitlines()
    assert "score = 9.0422" in tip.splitlines()

    # Long path labels are shortened to fit, the full value in the tooltip.
    rows = page.js(
        f"[...document.querySelectorAll(\"{heatmap} text[data-full]\")].map(t => [t.firstChild.nodeValue, t.querySelector('title').textContent])"
    )
    assert [full for _, full in rows] == [FOLDER.format(name=name) for name in sorted(DATASETS)]
    for (short, _), name in zip(rows, sorted(DATASETS), strict=True):
        assert short.startswith("…/") and short.endswith(f"/{name}_full_training_set.csv"), short
    assert (
        page.js(
            f'Math.min(...[...document.querySelectorAll("{heatmap} text")].map(t => t.getBoundingClientRect().left - t.ownerSVGElement.getBoundingClientRect().left))'
        )
        >= 0
    )
    table = "section[data-template=count] table.runs"
    cell = page.js(
        f"(() => {{ const c = [...document.querySelectorAll('{table} td')].find(td => td.textContent.endsWith('adult_full_training_set.csv')); return [c.textContent, c.title]; }})()"
    )
    assert cell[0].startswith("…/") and cell[1] == FOLDER.format(name="adult")
    label = page.js(f"(() => {{ const c = document.querySelector('{table} tbody td.label'); return [c.textContent, c.title]; }})()")
    assert "…" in label[0] and label[1].endswith("_full_training_set_with_z_equal_to_1")

    # At 1280 px nothing is wider than the window: the table scrolls inside its section, label column kept.
    assert page.js("document.documentElement.scrollWidth") <= 1280
    assert page.js("Math.max(...[...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().right))") <= 1280
    wrap = page.js(f"(() => {{ const w = document.querySelector('{table}').parentElement; return [w.clientWidth, w.scrollWidth]; }})()")
    assert wrap[0] <= 1280 < wrap[1]
    before = page.js(f"document.querySelector('{table} tbody td.label').getBoundingClientRect().left")
    page.js(f"document.querySelector('{table}').parentElement.scrollLeft = 100000")
    after = page.js(
        f"(() => {{ const t = document.querySelector('{table}'); const l = t.tBodies[0].rows[0].cells[0].getBoundingClientRect();"
        " const s = t.tBodies[0].rows[0].cells[1].getBoundingClientRect(); return [l.left, l.right, s.right]; })()"
    )
    assert after[0] == before and after[2] < after[1]  # the status column scrolled under the label

    # Filtering still matches the full text of shortened cells.
    page.type("#filter", "uci_machine_learning_repository/bank")
    assert page.js("document.getElementById('count').textContent") == "3 of 6 runs shown"
    page.js("const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input'))")
    page.js(f"document.querySelector('{table}').parentElement.scrollLeft = 0")
    page.screenshot(tmp_path / "two-datasets.png")
    assert (tmp_path / "two-datasets.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def synthetic_index(tmp_path, rows: list[dict]) -> str:
    """index.html of summary rows made up here (no sweep): for what a real sweep rarely shows."""
    out = tmp_path / "out"
    out.mkdir(parents=True)
    columns, full = summary.full_table(rows)
    (out / "index.html").write_text(index.page(columns, full, out), encoding="utf-8")
    return (out / "index.html").as_uri()


def made_up_row(params: dict, status: str = "ok") -> dict:
    label = "_".join(f"{k}{v}" for k, v in params.items())
    return {
        "template": "t",
        "label": label,
        "status": status,
        "stale": False,
        **{f"params.{k}": v for k, v in params.items()},
        "metrics.m": None if status == "failed" else sum(params.values()),
        "target": f"out/t/{label}/t_{label}.ipynb",
        "notebook": f"out/t/{label}/t_{label}{'.failed' if status == 'failed' else ''}.ipynb",
    }


def test_a_failed_run_keeps_its_series_and_too_many_series_are_named_not_coloured(page, tmp_path):
    rows = [made_up_row({"a": a, "b": b, "c": c}) for a in (1, 2, 3) for b in (1, 2, 3, 4) for c in (1, 2, 3)]
    rows[5] = made_up_row({"a": 1, "b": 2, "c": 3}, status="failed")
    page.open(synthetic_index(tmp_path, rows))
    assert page.errors() == []
    # 12 combinations of b and c: more than there are colours, so none, and the chart says so.
    chart = "svg.chart[aria-label='m against a']"
    assert page.js(f'document.querySelectorAll("{chart} [data-series], {chart} .series-legend").length') == 0
    assert page.js(f'document.querySelector("{chart}").textContent').endswith("also varying, not shown: b, c")

    page.open(
        synthetic_index(
            tmp_path / "two", [made_up_row({"a": a, "c": c}, "failed" if (a, c) == (2, 1) else "ok") for a in (1, 2, 3) for c in (1, 2)]
        )
    )
    chart = "svg.chart[aria-label='m against a']"
    failed = page.js(
        f'(() => {{ const d = document.querySelector("{chart} path.mark.st-failed"); return [d.dataset.series, getComputedStyle(d).stroke]; }})()'
    )
    key = page.js(f"getComputedStyle(document.querySelector(\"{chart} .series-legend .entry[data-series='1'] .key\")).fill")
    assert failed == ["1", key]
