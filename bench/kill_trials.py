"""Randomized kill trials: no result is lost or faked, whatever is killed and whatever changes meanwhile.

Each trial may first change the template (a new version saved the way Jupyter saves: a rename over
the file), the declared input or a parameter, starts ``snakemake --cores 2`` on a 12-run sweep
(preload through a zygote on), may change the template or the input again *while* it runs, then
does one of: SIGKILL Snakemake, SIGKILL its whole process tree, SIGINT (Ctrl-C), SIGSTOP/SIGCONT,
SIGKILL the warm server, the zygote or the kernels, or nothing. After every trial it checks:

- every target notebook is complete JSON whose record is consistent (``provenance.recorded``),
  status ok;
- every record tells the truth: the template version and the data the notebook printed are the
  ones whose digests it records (an input recorded as changed-while-read makes no claim);
- nothing else of a run is left in its folder but its files, once the next invocation has recovered.

At the end it restores the last versions, runs the sweep to completion, checks that a second
invocation executes nothing and that no kernel connection file is left in the trials' TMPDIR.

    python bench/kill_trials.py [--trials 32] [--seed 20261203] [--keep]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
from benchlib import add_common_options, isolated_env, release, servers_under, snakemake_cmd, stop_servers_under, workspace
from nbformat.v4 import new_code_cell, new_notebook

from nbsweep.file_digests import file_digest
from nbsweep.model.templates import code_digest
from nbsweep.provenance.records import read_record, recorded

RUNS = 12
VICTIMS = ("snakemake", "tree", "sigint", "stop-cont", "server", "zygote", "kernels", "none")


def template(version: int) -> nbformat.NotebookNode:
    params = new_code_cell("i = 0\nseconds = 0.3")
    params.metadata["tags"] = ["parameters"]
    body = (
        f"VERSION = {version}\n"
        "import time\n"
        "data = open('data/x.csv').read().strip()\n"
        "time.sleep(seconds)\n"
        "print('VERSION', VERSION, 'DATA', data, 'I', i)"
    )
    return new_notebook(
        cells=[params, new_code_cell(body)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def config(seconds: float) -> str:
    run = {
        "notebook": "notebooks/t.ipynb",
        "label": "r{i}",
        "grid": {"i": list(range(RUNS))},
        "parameters": {"seconds": seconds},
        "inputs": ["data/x.csv"],
        "preload": ["fractions"],
    }
    return json.dumps({"runs": [run]})


class Trials:
    def __init__(self, root: Path, env: dict, tmpdir: Path, rng: random.Random):
        self.root, self.env, self.tmpdir, self.rng = root, env, tmpdir, rng
        self.template_version = self.data_version = 0
        self.code_versions: dict[str, int] = {}
        self.data_versions: dict[str, int] = {}
        self.seconds = 0.3
        self.problems: list[str] = []
        (root / "notebooks").mkdir(parents=True)
        (root / "data").mkdir()
        (root / "config").mkdir()
        self.save_template(0)
        self.save_data(0)
        self.write_config()

    # --- changes, made the way editors make them (write a new file, rename it over the old) ---
    def save_template(self, version: int) -> None:
        nb = template(version)
        self.code_versions[code_digest(nb)] = version
        tmp = self.root / "notebooks" / ".t.ipynb.saving"
        nbformat.write(nb, tmp)
        os.replace(tmp, self.root / "notebooks" / "t.ipynb")
        self.template_version = version

    def save_data(self, version: int) -> None:
        tmp = self.root / "data" / ".x.csv.saving"
        tmp.write_text(f"data-{version}\n")
        self.data_versions[file_digest(tmp)] = version
        os.replace(tmp, self.root / "data" / "x.csv")
        self.data_version = version

    def write_config(self) -> None:
        (self.root / "config" / "config.yaml").write_text(config(self.seconds))

    def change_something(self) -> str:
        what = self.rng.choice(["nothing", "template", "data", "parameter"])
        if what == "template":
            self.save_template(self.template_version + 1)
        elif what == "data":
            self.save_data(self.data_version + 1)
        elif what == "parameter":
            self.seconds = self.rng.choice([0.2, 0.3, 0.4, 0.5])
            self.write_config()
        return what

    # --- processes ---
    def ours(self, proc) -> bool:
        try:
            return proc.environ().get("TMPDIR") == str(self.tmpdir)
        except psutil.Error:
            return False

    def victims(self, kind: str, snakemake: subprocess.Popen) -> list:
        if kind in ("snakemake", "sigint", "stop-cont"):
            return [psutil.Process(snakemake.pid)]
        if kind == "tree":
            parent = psutil.Process(snakemake.pid)
            return [parent, *parent.children(recursive=True)]
        if kind == "server":
            return servers_under(self.tmpdir)
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if not self.ours(proc):
                continue
            is_zygote = any(arg.endswith("zygote.py") for arg in cmdline)
            is_kernel = any("ipykernel" in arg for arg in cmdline) or (is_zygote and proc.ppid() != 1 and self.forked(proc))
            if (kind == "zygote" and is_zygote and not self.forked(proc)) or (kind == "kernels" and is_kernel):
                found.append(proc)
        return found

    @staticmethod
    def forked(proc) -> bool:
        try:
            parent = proc.parent()
            return parent is not None and any(arg.endswith("zygote.py") for arg in parent.cmdline())
        except psutil.Error:
            return False

    def strike(self, kind: str, snakemake: subprocess.Popen) -> None:
        try:
            targets = self.victims(kind, snakemake)
        except psutil.Error:
            return
        for proc in targets:
            try:
                if kind == "sigint":
                    proc.send_signal(signal.SIGINT)
                elif kind == "stop-cont":
                    proc.send_signal(signal.SIGSTOP)
                    time.sleep(self.rng.uniform(0.5, 3))
                    proc.send_signal(signal.SIGCONT)
                else:
                    proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass

    def snakemake(self, log: Path) -> subprocess.Popen:
        with open(log, "w") as fh:
            return subprocess.Popen(snakemake_cmd(self.root, "--cores", "2"), cwd=self.root, env=self.env, stdout=fh, stderr=fh)

    # --- checks ---
    def targets(self) -> list[Path]:
        out = self.root / "papermill_outputs" / "t"
        return [out / f"r{i}" / f"t_r{i}.ipynb" for i in range(RUNS)]

    def check(self, when: str) -> None:
        for target in self.targets():
            if not target.exists():
                continue
            try:
                nb = json.loads(target.read_text())
            except ValueError:
                self.problems.append(f"{when}: {target.name} is not complete JSON")
                continue
            record = read_record(target)
            if record.get("status") != "ok" or recorded(target) is None:
                self.problems.append(f"{when}: {target.name} has no consistent ok record")
                continue
            printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stdout")
            words = printed.split()
            if "VERSION" not in words:
                self.problems.append(f"{when}: {target.name} printed nothing")
                continue
            ran_version, ran_data = int(words[words.index("VERSION") + 1]), words[words.index("DATA") + 1]
            claimed = self.code_versions.get(record["template_code"])
            if claimed != ran_version:
                self.problems.append(f"{when}: {target.name} ran template version {ran_version} but records version {claimed}")
            sha = record["inputs"].get("data/x.csv")
            if sha in self.data_versions and f"data-{self.data_versions[sha]}" != ran_data:
                self.problems.append(f"{when}: {target.name} read {ran_data} but records data-{self.data_versions[sha]}")

    def executions(self) -> dict[str, str | None]:
        return {target.name: read_record(target).get("execution") for target in self.targets()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seed", type=int, default=20261203)
    add_common_options(parser, checkouts=False)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with workspace("Randomized kill trials", "kills", args) as (_, tmp):
        env, tmpdir = isolated_env()
        trials = Trials(tmp / "project", env, tmpdir, rng)
        tally: dict[str, int] = {}
        leftovers: list[str] = []
        try:
            for number in range(1, args.trials + 1):
                before = trials.change_something()
                victim = rng.choice(VICTIMS)
                snakemake = trials.snakemake(tmp / f"trial-{number}.log")
                time.sleep(rng.uniform(0.5, 6))
                during = trials.change_something() if rng.random() < 0.3 else "nothing"
                trials.strike(victim, snakemake)
                try:
                    code = snakemake.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    trials.problems.append(f"trial {number}: snakemake hung after {victim}")
                    psutil.Process(snakemake.pid).kill()
                    code = snakemake.wait()
                trials.check(f"trial {number} ({victim})")
                tally[victim] = tally.get(victim, 0) + 1
                print(f"trial {number:3d}: changed {before:9s} | {victim:9s} | during: {during:9s} | exit {code}", flush=True)
            final = trials.snakemake(tmp / "final.log")
            if final.wait(timeout=600) != 0:
                trials.problems.append(f"the final invocation failed: see {tmp / 'final.log'}")
            trials.check("final")
            missing = [t.name for t in trials.targets() if not t.exists()]
            if missing:
                trials.problems.append(f"final: missing {', '.join(missing)}")
            seen = trials.executions()
            again = trials.snakemake(tmp / "again.log")
            again.wait(timeout=300)
            if trials.executions() != seen:
                trials.problems.append("a second invocation after the final one executed runs again")
            partials = [str(p) for p in (trials.root / "papermill_outputs").rglob("*partial*")]
            if partials:
                trials.problems.append(f"partial notebooks left: {partials}")
            stop_servers_under(tmpdir)
            leftovers = [str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*.json")]
        finally:
            release(tmpdir)
        if leftovers:
            trials.problems.append(f"kernel connection files left: {leftovers}")
        print("\nvictims: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
        print(f"{args.trials} trials: {len(trials.problems)} problems")
        for problem in trials.problems:
            print(f"  - {problem}")
        return 1 if trials.problems else 0


if __name__ == "__main__":
    sys.exit(main())
