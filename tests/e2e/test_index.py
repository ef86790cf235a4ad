"""index.html's tables in real headless Chromium: sorting, filtering, links, no network."""

import base64
import json
import time
from pathlib import Path

import pytest
from chromium import chromium_page, needs_chromium

from nbsweep.results import index, summary

pytestmark = needs_chromium


@pytest.fixture
def page(tmp_path):
    with chromium_page(tmp_path / "chromium-profile") as opened:
        yield opened


def sample_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        status = "failed" if i % 7 == 3 else "not run" if i % 7 == 5 else "ok"
        row = {
            "template": "model" if i % 2 else "explore",
            "label": f"run{i}",
            "status": status,
            "stale": i == 4,
            "params.lr": round(0.1 * (i % 5 + 1), 2),
            "params.cfg.name": f"cfg{i % 3}",
            "metrics.accuracy": None if status != "ok" else round(((i * 37) % 100) / 100, 2),
            "target": f"out/t/run{i}/t_run{i}.ipynb",
            "log": f"out/t/run{i}/t_run{i}.log",
            "notebook": None if status == "not run" else f"out/t/run{i}/t_run{i}{'.failed' if status == 'failed' else ''}.ipynb",
        }
        if status == "failed":
            row.update(error_name="ValueError", error_message=f"bad value {i} <b>", error_cell_index=2)
        rows.append(row)
    return rows


def write_index(tmp_path, rows) -> str:
    out = tmp_path / "out"
    out.mkdir()
    columns, full = summary.full_table(rows)
    (out / "index.html").write_text(index.page(columns, full, Path("out")), encoding="utf-8")
    return (out / "index.html").as_uri()


MODEL = "section[data-template=model] table"


def column(page, name: str, table: str = MODEL) -> int:
    return page.js(f"[...document.querySelectorAll('{table} thead th')].findIndex(th => th.textContent.startsWith({json.dumps(name)}))")


def values(page, col: int, table: str = MODEL) -> list[str]:
    return page.js(f"[...document.querySelectorAll('{table} tbody tr')].filter(r => !r.hidden).map(r => r.cells[{col}].textContent)")


def test_index_in_chromium_sorts_filters_and_loads_nothing_else(page, tmp_path):
    rows = sample_rows(40)
    model = [r for r in rows if r["template"] == "model"]
    page.open(write_index(tmp_path, rows))
    assert page.js("document.querySelectorAll('section.template').length") == 2
    assert page.js(f"document.querySelectorAll('{MODEL} tbody tr').length") == len(model) == 20
    assert page.js("document.getElementById('count').textContent") == "40 of 40 runs shown"
    assert page.js("getComputedStyle(document.querySelector('tr.st-failed .badge')).backgroundColor") == "rgb(207, 34, 46)"

    accuracy = column(page, "accuracy")
    labels = column(page, "label")
    original = values(page, labels)
    page.click(f"{MODEL} thead th:nth-child({accuracy + 1}) button")
    ascending = [float(v) for v in values(page, accuracy) if v]
    assert ascending == sorted(ascending) and len(ascending) == sum(r["status"] == "ok" for r in model)
    assert values(page, accuracy)[-1] == "" and values(page, labels) != original  # empty cells last
    page.click(f"{MODEL} thead th:nth-child({accuracy + 1}) button")
    descending = [float(v) for v in values(page, accuracy) if v]
    assert descending == sorted(descending, reverse=True)
    assert page.js(f"document.querySelectorAll('{MODEL} thead th')[{accuracy}].getAttribute('aria-sort')") == "descending"

    page.type("#filter", "cfg1")
    assert set(values(page, column(page, "cfg.name"))) == {"cfg1"}
    dimmed = page.js("[...document.querySelectorAll('.charts [data-run]')].filter(m => m.classList.contains('dim')).length")
    assert dimmed and page.js("document.querySelectorAll('.charts [data-run]:not(.dim)').length")  # marks follow the filter
    page.js("const s = document.getElementById('status'); s.value = 'failed'; s.dispatchEvent(new Event('input'))")
    shown = values(page, labels)
    assert shown and all(rows[int(label[3:])]["status"] == "failed" for label in shown)
    assert page.js(f"document.querySelectorAll('{MODEL} thead th')[{accuracy}].hidden")  # no failed run has one
    error = page.js("document.querySelector('tr.st-failed td.error').textContent")
    assert error.startswith("ValueError: bad value") and "<b>" in error and error.endswith("in cell 3")
    assert page.js("document.querySelector('tr.st-failed td.files a').getAttribute('href')").endswith(".failed.ipynb")
    page.js("const t = document.getElementById('template'); t.value = 'explore'; t.dispatchEvent(new Event('input'))")
    hidden = page.js("Object.fromEntries([...document.querySelectorAll('section.template')].map(s => [s.dataset.template, s.hidden]))")
    assert hidden == {"explore": False, "model": True}

    assert page.errors() == []
    assert all(url.startswith("file://") for url in page.requests()), page.requests()

    # Inside a Snakemake report (a data: URL) links to run files cannot work: they are hidden.
    embedded = base64.b64encode((tmp_path / "out" / "index.html").read_bytes()).decode()
    page.open(f"data:text/html;charset=utf8;base64,{embedded}")
    assert page.js("getComputedStyle(document.querySelector('td.files')).display") == "none"
    assert page.js("document.querySelectorAll('table.runs tbody tr').length") == 40 and page.errors() == []
    assert page.js("document.querySelectorAll('.charts a').length") == 0 and page.js(
        "document.querySelectorAll('.charts [data-run]').length"
    )


def test_index_of_1000_runs_sorts_quickly(page, tmp_path):
    rows = sample_rows(1000)
    lowest = min(r["metrics.accuracy"] for r in rows if r["template"] == "model" and r["metrics.accuracy"] is not None)
    page.open(write_index(tmp_path, rows))
    accuracy = column(page, "accuracy")
    start = time.perf_counter()
    page.click(f"{MODEL} thead th:nth-child({accuracy + 1}) button")
    assert values(page, accuracy)[0] == index.display_text(lowest)
    assert time.perf_counter() - start < 2
    assert page.errors() == []
