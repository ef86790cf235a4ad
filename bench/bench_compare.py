"""compare.html of a realistic sweep: how long it takes to write, how big it is, how fast it opens.

    python bench/bench_compare.py              # 64 realistic notebooks (bench/real_notebooks.py), 5 rounds (~3 min)
    python bench/bench_compare.py --n 16 --rounds 3

One sweep of ``--n`` runs of bench/real_notebooks.py's template (read one of the repo's CSVs,
``describe(include="all")``, a histogram) with nbsweep's defaults, then:
  write        compare_page.write_page for the template from summary.json, cold (fingerprint removed), in this process
  no-op        the same call with its fingerprint current (what every later invocation pays)
  open         headless Chromium (tests/chromium.py): navigation to the load event, the table drawn (12 runs shown)
  all runs     choosing all N runs in the open page (redraw, measured inside the page)
  size         compare.html, its images folder, and the N renderings beside the runs for scale
Targets: open < 2 s; page size bounded (each distinct output once, images as files by content).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import benchlib as bl
import real_notebooks as rn

sys.path.insert(0, str(bl.REPO / "tests"))


def kib(paths) -> float:
    return round(sum(p.stat().st_size for p in paths) / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description="compare.html of a realistic sweep: write time, size, open time in Chromium.")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    bl.add_common_options(parser, checkouts=False)
    args = parser.parse_args()
    from chromium import CHROMIUM, Page

    from nbsweep.results import compare_page

    if CHROMIUM is None:
        raise SystemExit("bench: Chromium is not installed (Debian package: chromium)")
    with bl.workspace("compare.html of a realistic sweep", "compare", args) as (facts, tmp):
        project = rn.make_project(tmp / "sweep", args.n, {})
        timing = bl.run_timed(bl.snakemake_cmd(project, "--cores", str(args.cores)), cwd=project, log=tmp / "sweep.log")
        print(f"# the sweep: {args.n} runs in {timing.wall:.1f} s", flush=True)
        os.chdir(project)  # the summary's paths are relative to the project
        out = Path("papermill_outputs")
        folder = (out / rn.NAME).resolve()
        rows = [r for r in json.loads((out / "summary.json").read_text()) if r["template"] == rn.NAME]
        writes, noops = [], []
        for _ in range(args.rounds):
            (folder / compare_page.STAMP).unlink()
            (folder / compare_page.PAGE).unlink()
            start = time.perf_counter()
            compare_page.write_page(out, rn.NAME, rows)
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            compare_page.write_page(out, rn.NAME, rows)
            noops.append(time.perf_counter() - start)
        page = Page(tmp / "chromium")
        opens, loads, redraws = [], [], []
        names = json.dumps([f"{rn.NAME}/{r['label']}" for r in rows])
        try:
            for _ in range(args.rounds + 1):  # the first warms Chromium's caches up: dropped
                page.open("about:blank")
                start = time.perf_counter()
                page.open((folder / compare_page.PAGE).as_uri())
                shown = page.js("document.querySelectorAll('thead th[data-run]').length")
                opens.append(time.perf_counter() - start)
                loads.append(page.js("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
                redraws.append(
                    page.js(f"(() => {{ const t = performance.now(); nbsweepChoose({names}); return performance.now() - t; }})()") / 1000
                )
            assert shown == min(12, args.n) and page.errors() == [], page.errors()
            all_shown = page.js("document.querySelectorAll('thead th[data-run]').length")
        finally:
            page.close()
        images = list((folder / compare_page.IMAGES).iterdir())
        renderings = [p for p in folder.glob("*/*.html")]
        median = lambda values: round(statistics.median(values[1:] if len(values) > 1 else values), 3)  # noqa: E731
        print(
            bl.table(
                ["measure", "median (s)", "rounds"],
                [
                    ["write compare.html (cold)", round(statistics.median(writes), 3), len(writes)],
                    ["write, fingerprint current", round(statistics.median(noops), 4), len(noops)],
                    ["open in Chromium: navigation to table drawn", median(opens), len(opens) - 1],
                    ["  of which the page's load event", median(loads), len(loads) - 1],
                    [f"choose all {all_shown} runs (redraw)", median(redraws), len(redraws) - 1],
                ],
            )
        )
        print()
        print(
            bl.table(
                ["file", "KiB", "count"],
                [
                    ["compare.html", kib([folder / compare_page.PAGE]), 1],
                    ["compare.images/", kib(images), len(images)],
                    ["the runs' renderings (for scale)", kib(renderings), len(renderings)],
                ],
            )
        )
        print(f"\nopen < 2 s: {bl.verdict(median(opens), 2.0)}")
        bl.save_json(args.json, {"facts": facts, "writes": writes, "noops": noops, "opens": opens, "loads": loads, "redraws": redraws})
    return 0


if __name__ == "__main__":
    sys.exit(main())
