"""Runs side by side: compare.html in headless Chromium and `nbsweep diff`, after one real sweep
of four datasets (text, table, plot and an identical cell), a copy of one run and a failing run.
NBSWEEP_DOCS_SCREENSHOTS=1 copies the page's screenshot to docs/compare.png."""

import base64
import os
import shutil

import pytest
from chromium import CHROMIUM, chromium_page
from conftest import REPO, Project
from nbformat.v4 import new_output
from unit.builders import executed

from nbsweep.results import compare_page

pytestmark = pytest.mark.xdist_group("compare")

CELLS = [
    'print("the same everywhere")',
    'import pandas as pd\ndf = pd.read_csv(f"data/{name}.csv")\nprint(len(df), "rows, mean x", df["x"].mean() * scale)',
    "df.describe()",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 1.5), dpi=60)\nax.plot(df['x'])\nplt.show()",
]
DATA = {"d1": [1, 2, 3], "d2": [4, 5, 6, 7], "d3": [2, 2, 9], "d4": [0, 10]}


def config(d1_scale: int = 1) -> dict:
    return {
        "runs": [
            {"notebook": "notebooks/explore.ipynb", "label": "d1", "parameters": {"name": "d1", "scale": d1_scale}},
            {"notebook": "notebooks/explore.ipynb", "label": "{name}", "grid": {"name": ["d2", "d3", "d4", "bad"]}},
            {"notebook": "notebooks/explore.ipynb", "label": "d3copy", "parameters": {"name": "d3"}},
        ]
    }


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Project:
    project = Project(tmp_path_factory.mktemp("compare"))
    project.notebook("explore", CELLS, 'name = "d1"\nscale = 1')
    (project.root / "data").mkdir()
    for name, values in DATA.items():
        (project.root / "data" / f"{name}.csv").write_text("x\n" + "\n".join(map(str, values)) + "\n")
    (project.root / "data" / "bad.csv").write_text("y\n1\n")
    project.write_config(config())
    project.snakemake(check=False)
    return project


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package: chromium)")
    with chromium_page(tmp_path_factory.mktemp("chromium")) as opened:
        yield opened


def shown(page) -> dict:
    """What the page shows: its columns, and each code cell's row class by its title."""
    return page.js(
        "({runs: [...document.querySelectorAll('thead th[data-run]')].map(t => t.dataset.run),"
        " rows: Object.fromEntries([...document.querySelectorAll('tbody tr:not(.md)')].map(r => [r.cells[0].textContent, r.className]))})"
    )


def test_compare_page_shows_runs_side_by_side(sweep, page):
    html = sweep.out / "explore" / "compare.html"
    index = (sweep.out / "index.html").read_text()
    assert 'href="explore/compare.html"' in index and 'href="explore/compare.html#d2"' in index
    page.viewport(1400, 900)
    page.open(html.as_uri())
    seen = shown(page)
    assert seen["runs"] == [f"explore/{label}" for label in ("d1", "d2", "d3", "d4", "bad", "d3copy")]
    rows = seen["rows"]
    assert rows['cell 3 (`print("the same everywhere")`)'] == "same"
    assert page.js("document.querySelector('tr.same td').textContent") == "same in all 6 runs"
    assert rows["cell 2 (parameters)"] == "diff params"
    assert rows["cell 4 (`import pandas as pd`)"] == "diff"
    assert rows["cell 5 (`df.describe()`)"] == "diff"
    assert rows["cell 6 (`import matplotlib.pyplot as plt`)"] == "diff"
    failed = page.js("[...document.querySelectorAll('thead th')].findIndex(t => t.dataset.run === 'explore/bad')")
    error = page.js(f"document.querySelector('tr[data-cell=\"3\"]').cells[{failed}].textContent")
    assert "KeyError" in error
    assert page.js("document.querySelectorAll('tr.diff img').length") == 5  # the failed run has no plot
    assert page.js("[...document.querySelectorAll('tr.diff img')].map(i => i.naturalWidth > 0).every(Boolean)")
    assert page.js("document.querySelectorAll('tr.diff .html table .chg').length") > 0  # differing table cells marked
    assert page.js("[...document.querySelectorAll('tr[data-cell=\"3\"] pre .chg')].map(s => s.textContent)")[:2] == ["4", "5.5"]
    shot = sweep.root / "compare.png"
    page.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("NBSWEEP_DOCS_SCREENSHOTS"):  # set to refresh the documentation's picture
        shutil.copy(shot, REPO / "docs" / "compare.png")

    page.js("nbsweepChoose(['explore/d2', 'explore/d3'])")  # as the checkboxes do
    assert shown(page)["runs"] == ["explore/d2", "explore/d3"]
    page.type("#filter", "name=d3")  # the filter chooses the runs whose parameter has that value
    seen = shown(page)
    assert seen["runs"] == ["explore/d3", "explore/d3copy"]
    assert set(seen["rows"].values()) == {"same", "same params"}
    assert page.js("document.querySelector('tr.same td').textContent") == "same in all 2 runs"
    page.click("#picker details summary")
    page.click("#picker input[data-run='explore/d1']")
    assert shown(page)["runs"] == ["explore/d1", "explore/d3", "explore/d3copy"]
    assert page.js("document.querySelector('thead th[data-run=\"explore/d1\"]').textContent").endswith("name = d1")
    assert page.errors() == []
    assert all(url.startswith("file://") for url in page.requests()), page.requests()


def test_nbsweep_diff_says_what_differs(sweep):
    same = sweep.nbsweep("diff", "explore/d3", "explore/d3copy")
    assert same.returncode == 0, same.stderr
    assert "all 5 code cells the same" in same.stdout
    different = sweep.nbsweep("diff", "explore/d1", "explore/d2", "explore/bad")
    assert different.returncode == 1, different.stderr
    out = different.stdout
    assert 'cell 3 (`print("the same everywhere")`): same in all 3' in out
    assert "cell 6 (`import matplotlib.pyplot as plt`): differs; images differ" in out
    assert '-name = "d1"' in out and '+name = "d2"' in out
    assert "KeyError" in out
    refused = sweep.nbsweep("diff", "explore/nope", "explore/d1")
    assert refused.returncode == 2 and refused.stderr.startswith("nbsweep: explore/nope names no run")


def test_a_no_op_invocation_leaves_the_page_and_previous_compares(sweep, page):
    html = sweep.out / "explore" / "compare.html"
    before = html.stat().st_mtime_ns
    sweep.snakemake(check=False)
    assert html.stat().st_mtime_ns == before
    images = sorted(p.name for p in (sweep.out / "explore" / "compare.images").iterdir())
    assert len(images) == 4  # d3 and d3copy share theirs

    sweep.write_config(config(d1_scale=2))
    sweep.snakemake(check=False)
    diff = sweep.nbsweep("diff", "--previous", "explore/d1")
    assert diff.returncode == 1, diff.stderr
    assert "-scale = 1" in diff.stdout and "+scale = 2" in diff.stdout
    assert "cell 5 (`df.describe()`): same in all 2" in diff.stdout
    page.open("about:blank")  # else only the fragment changes, and no page loads
    page.open(html.as_uri() + "#previous:d1")
    assert shown(page)["runs"] == ["explore/d1 (previous)", "explore/d1"]
    assert page.js("document.querySelector('tr.diff.params pre .chg-line').textContent") == "scale = 2"
    assert page.js("document.querySelector('tr.diff.params pre .chg').textContent") == "2"  # the word that differs


PWNED = "document.documentElement.dataset.pwned = 1"  # what injected code would do; the page must never run it
HOSTILE_HTML = (
    f'<b>shown</b><img src="x" onerror="{PWNED}"><script>{PWNED}</script><a href=" javascript:{PWNED}">link</a>'
    f'<svg><a href="javascript:{PWNED}"><circle r="9"></circle></a><animate onbegin="{PWNED}" dur="1s"></animate></svg>'
    f'<iframe srcdoc="<script>parent.{PWNED}</script>"></iframe><table><tr><td>cell</td></tr></table>'
)


def test_a_page_of_200_runs_with_huge_and_hostile_outputs_stays_small_and_runs_none_of_them(tmp_path, page):
    """Runs' outputs and parameters hold HTML and script (a notebook's display(HTML(...)) included), one
    run prints 5 MB and shows a 5 MB image: the page is bounded and only its own script runs."""
    out, rows = tmp_path / "out", []
    for k in range(200):
        target = out / "t" / f"r{k}" / f"t_r{k}.ipynb"
        target.parent.mkdir(parents=True)
        html = new_output("display_data", data={"text/html": HOSTILE_HTML.replace("cell", f"cell {k % 2}"), "text/plain": "x"})
        stream = new_output("stream", name="stdout", text=f"</script><script>{PWNED}</script>\n" * (1 if k else 50_000))
        image = [new_output("display_data", data={"image/png": base64.b64encode(b"\x89PNG" + os.urandom(5_000_000)).decode()})]
        executed(target, [[html], [stream], image if k == 0 else []], f"x = '</script><script>{PWNED}</script>'")
        params = {"params.x": f"<img src=x onerror='{PWNED}'>", "params.k": k}
        rows.append({"template": "t", "label": f"r{k}", "status": "ok", "target": str(target), "notebook": str(target), **params})
    compare_page.write_page(out, "t", rows)
    html = out / "t" / "compare.html"
    assert html.stat().st_size < 500_000  # 5 MB printed, 200 runs: the page holds each distinct output once, cut
    page.open(html.as_uri() + "#r1")
    page.js("nbsweepChoose([...Array(200).keys()].map(k => 't/r' + k))")
    assert page.js("document.querySelectorAll('thead th[data-run]').length") == 200
    assert page.js("document.querySelector('tr.diff .html b').textContent") == "shown"
    assert page.js("document.querySelectorAll('tr.diff .html td.chg').length") > 0  # tables are still compared
    assert page.js("document.querySelectorAll('#compare script, #compare iframe, #compare [onerror], #compare [onbegin]').length") == 0
    page.click("tr.diff .html a")
    assert page.js("document.documentElement.dataset.pwned") is None
    assert [e for e in page.errors() if "ERR_FILE_NOT_FOUND" not in str(e)] == []  # but the outputs' <img src="x">
    page.open("about:blank")
    page.open(html.as_uri() + "#%E0%A4%A")  # a malformed fragment: the first 12 runs
    assert page.js("document.querySelectorAll('thead th[data-run]').length") == 12
