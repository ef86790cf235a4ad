"""index.html's charts after a real 3x3 grid sweep, in real headless Chromium."""

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from chromium import chromium_page, needs_chromium

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
