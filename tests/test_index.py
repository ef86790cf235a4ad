"""index.html in real headless Chromium, driven over the DevTools protocol (needs websocket-client)."""

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nbsweep import index, summary

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class Page:
    """One Chromium tab: navigate, evaluate JavaScript, click, and collect errors and requests."""

    def __init__(self, profile: Path):
        websocket = pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[test]')")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.browser = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    tabs = [t for t in json.load(response) if t["type"] == "page"]
                if tabs:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.browser.poll() is not None:
                self.close()
                pytest.fail("Chromium did not open its DevTools port")
            time.sleep(0.2)
        self.ws = websocket.create_connection(tabs[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str):
        deadline = time.monotonic() + 30
        while not any(e.get("method") == event for e in self.events):
            assert time.monotonic() < deadline, f"no {event}"
            self.events.append(json.loads(self.ws.recv()))

    def open(self, url: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                      " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def errors(self) -> list:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        return [
            e for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        if getattr(self, "ws", None):
            self.ws.close()
        self.browser.terminate()
        try:
            self.browser.wait(10)
        except subprocess.TimeoutExpired:
            self.browser.kill()
            self.browser.wait()


@pytest.fixture
def page(tmp_path):
    opened = Page(tmp_path / "chromium-profile")
    yield opened
    opened.close()


def sample_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        status = "failed" if i % 7 == 3 else "not run" if i % 7 == 5 else "ok"
        row = {
            "template": "model" if i % 2 else "explore", "label": f"run{i}", "status": status, "stale": i == 4,
            "params.lr": round(0.1 * (i % 5 + 1), 2), "params.cfg.name": f"cfg{i % 3}",
            "metrics.accuracy": None if status != "ok" else round(((i * 37) % 100) / 100, 2),
            "target": f"out/t/run{i}/t_run{i}.ipynb", "log": f"out/t/run{i}/t_run{i}.log",
            "notebook": None if status == "not run" else f"out/t/run{i}/t_run{i}{'.failed' if status == 'failed' else ''}.ipynb",
        }
        if status == "failed":
            row.update(error_name="ValueError", error_message=f"bad value {i} <b>", error_cell_index=2)
        rows.append(row)
    return rows


def write_index(tmp_path, rows) -> str:
    out = tmp_path / "out"
    out.mkdir()
    columns, full = summary.table(rows)
    (out / "index.html").write_text(index.page(columns, full, Path("out")), encoding="utf-8")
    return (out / "index.html").as_uri()


def column(page, name: str) -> int:
    return page.js(f"[...document.querySelectorAll('#runs thead th')].findIndex(th => th.textContent.startsWith({json.dumps(name)}))")


def values(page, col: int) -> list[str]:
    return page.js(f"[...document.querySelectorAll('#runs tbody tr')].filter(r => !r.hidden).map(r => r.cells[{col}].textContent)")


def test_index_in_chromium_sorts_filters_and_loads_nothing_else(page, tmp_path):
    rows = sample_rows(40)
    page.open(write_index(tmp_path, rows))
    assert page.js("document.querySelectorAll('#runs tbody tr').length") == 40
    assert page.js("document.getElementById('count').textContent") == "40 of 40 runs shown"
    assert page.js("getComputedStyle(document.querySelector('tr.st-failed .badge')).backgroundColor") == "rgb(207, 34, 46)"

    accuracy = column(page, "accuracy")
    labels = column(page, "label")
    original = values(page, labels)
    page.click(f"#runs thead th:nth-child({accuracy + 1}) button")
    ascending = [float(v) for v in values(page, accuracy) if v]
    assert ascending == sorted(ascending) and len(ascending) == sum(r["status"] == "ok" for r in rows)
    assert values(page, accuracy)[-1] == "" and values(page, labels) != original  # empty cells last
    page.click(f"#runs thead th:nth-child({accuracy + 1}) button")
    descending = [float(v) for v in values(page, accuracy) if v]
    assert descending == sorted(descending, reverse=True)
    assert page.js(f"document.querySelectorAll('#runs thead th')[{accuracy}].getAttribute('aria-sort')") == "descending"

    page.type("#filter", "cfg1")
    assert set(values(page, column(page, "cfg.name"))) == {"cfg1"}
    page.js("const s = document.getElementById('status'); s.value = 'failed'; s.dispatchEvent(new Event('input'))")
    shown = values(page, labels)
    assert shown and all(rows[int(label[3:])]["status"] == "failed" for label in shown)
    assert page.js(f"document.querySelectorAll('#runs thead th')[{accuracy}].hidden")  # no failed run has one
    error = page.js("document.querySelector('tr.st-failed td.error').textContent")
    assert error.startswith("ValueError: bad value") and "<b>" in error and error.endswith("in cell #3")
    assert page.js("document.querySelector('tr.st-failed td.files a').getAttribute('href')").endswith(".failed.ipynb")

    assert page.errors() == []
    assert all(url.startswith("file://") for url in page.requests()), page.requests()

    # Inside a Snakemake report (a data: URL) links to run files cannot work: they are hidden.
    embedded = base64.b64encode((tmp_path / "out" / "index.html").read_bytes()).decode()
    page.open(f"data:text/html;charset=utf8;base64,{embedded}")
    assert page.js("getComputedStyle(document.querySelector('td.files')).display") == "none"
    assert page.js("document.querySelectorAll('#runs tbody tr').length") == 40 and page.errors() == []


def test_index_of_1000_runs_sorts_quickly(page, tmp_path):
    page.open(write_index(tmp_path, sample_rows(1000)))
    accuracy = column(page, "accuracy")
    start = time.perf_counter()
    page.click(f"#runs thead th:nth-child({accuracy + 1}) button")
    assert values(page, accuracy)[0] == "0"
    assert time.perf_counter() - start < 2
    assert page.errors() == []
