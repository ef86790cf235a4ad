"""Runs that feed runs: which run produces which file, what runs after what, and no cycles.

A run's declared ``outputs`` are files it writes; another run listing one of them in its
``inputs`` consumes it and runs after its producer. ``after`` names runs (a template's name: all
its runs; ``<template>/<label>``: one) that a run executes after, whose notebooks it receives as
its ``upstream`` parameter. ``link`` checks the whole graph before anything runs: an output is
claimed by one run only, every input exists or is produced, every name in ``after`` is a run,
and no run depends on itself.
"""

import os
from dataclasses import replace
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.files import UnusableFile, check_regular

UPSTREAM = "upstream"  # the parameter that receives the runs named in `after`


def normal(path: str) -> str:
    """A declared file as nbsweep compares it (``./a//b.csv`` is ``a/b.csv``)."""
    return os.path.normpath(path)


def producers(runs, output_dir: str) -> dict[str, object]:
    """Declared output -> the run that writes it; an output claimed twice, or one that is a file
    nbsweep reads or writes (templates, config files, anything in the output folder or in
    ``.snakemake/``), is an error."""
    found: dict[str, object] = {}
    read = {normal(run.template.path): f"the template of run {run.id}" for run in runs}
    read.update({normal(run.origin.source): "a config file of this sweep" for run in runs})
    managed = [
        (normal(output_dir), f"in the output folder {output_dir!r}, which nbsweep manages"),
        (".snakemake", "in Snakemake's .snakemake/"),
    ]
    for run in runs:
        for path in run.outputs:
            inside = next((what for folder, what in managed if Path(path).is_relative_to(folder)), None)
            if path in read or inside:
                raise SweepError(
                    f"{run.origin.where()}: output {path!r} of run {run.id} is {read.get(path) or inside}; "
                    "declare a file of the notebook's own, e.g. under results/"
                )
            other = found.setdefault(path, run)
            if other is not run:
                raise SweepError(
                    f"{run.origin.where()}: output {path!r} is declared by run {run.id} and by run {other.id} "
                    f"({other.origin.where()}); one file has one producer: give the runs different outputs"
                )
    return found


def after_runs(run, names: list[str], by_id: dict, by_template: dict) -> list:
    """The runs ``after`` names: template names stand for all their runs, in config order."""
    found = []
    for name in names:
        if name in by_id:
            found.append(by_id[name])
        elif name in by_template:
            found += by_template[name]
        else:
            known = ", ".join(sorted(by_template)) or "none"
            raise SweepError(
                f"{run.origin.where()}: 'after' names {name!r}, which is neither a template nor a run of this config "
                f"(templates: {known}); use a template name or '<template>/<label>'"
            )
    return list({run.id: run for run in found}.values())


def not_a_regular_file(path: str) -> str | None:
    """Why an existing input that is no regular file (a FIFO, a device, a folder) cannot be read; None otherwise."""
    try:
        check_regular(os.stat(path), None)
    except UnusableFile as err:
        return err.reason
    except OSError:
        return None
    return None


def link_runs(runs: list, output_dir: str, is_file) -> list:
    """The runs with their produced inputs and ``after`` runs resolved; raises SweepError for an
    output claimed twice, a missing input no run produces, an unknown name in ``after`` or a cycle.
    ``is_file(path)`` says whether an input exists (cached by the planner)."""
    made_by = producers(runs, output_dir)
    by_id = {run.id: run for run in runs}
    by_template: dict[str, list] = {}
    for run in runs:
        by_template.setdefault(run.name, []).append(run)
    linked = []
    for run in runs:
        inputs, produced = [], []
        for path in run.inputs:
            producer = made_by.get(normal(path))
            if producer is not None:
                inputs.append(normal(path))
                produced.append((normal(path), producer.id))
            elif is_file(path):
                inputs.append(path)
            elif reason := not_a_regular_file(path):
                raise SweepError(
                    f"{run.origin.where()}: input file {path!r} {reason} (run {run.label!r}); declare a regular file in 'inputs'"
                )
            else:
                raise SweepError(
                    f"{run.origin.where()}: input file {path!r} does not exist and no run declares it as an output (run {run.label!r}); "
                    "fix the path in 'inputs', or add it to the 'outputs' of the run that writes it"
                )
        names = run.origin.spec.get("after", [])
        if names and UPSTREAM in run.parameters:
            raise SweepError(
                f"{run.origin.where()}: run {run.id} sets parameter {UPSTREAM!r}, which 'after' fills with the runs it names; "
                "remove it from the parameters (or rename it in the template)"
            )
        after = after_runs(run, names, by_id, by_template) if names else []
        after_pairs = tuple((other.id, str(layout.target(output_dir, other.name, other.label))) for other in after)
        linked.append(replace(run, inputs=tuple(dict.fromkeys(inputs)), produced=tuple(produced), after=after_pairs))
    check_acyclic(linked)
    return linked


def upstream_ids(run) -> list[str]:
    """The runs this one waits for: producers of its inputs, then the runs it is after."""
    return list(dict.fromkeys([producer for _, producer in run.produced] + [run_id for run_id, _ in run.after]))


def check_acyclic(runs: list) -> None:
    """A run that (through others) waits for itself can never run: name the cycle."""
    by_id = {run.id: run for run in runs}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in by_id:
        if state.get(start):
            continue
        path, stack = [start], [iter(upstream_ids(by_id[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise SweepError(
                    f"{by_id[nxt].origin.where()}: runs {' -> '.join(reversed(cycle))} form a cycle (each needs the next one's outputs "
                    "or runs after it), so none can run; remove one of these inputs or 'after' entries"
                )
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(upstream_ids(by_id[nxt])))


def fill_outputs(spec: dict, point: dict, fill, where: str) -> tuple[str, ...]:
    """A run's declared outputs, filled from its grid point; braces left in a name are refused."""
    paths = []
    for pattern in spec.get("outputs", []):
        path = normal(fill(pattern, point, "output", where))
        if "{" in path or "}" in path:
            raise SweepError(f"{where}: output file {path!r} has braces in its name, which Snakemake reads as wildcards; rename the file")
        if Path(path).is_absolute() or path == ".." or path.startswith("../"):
            raise SweepError(f"{where}: output file {path!r} is outside the project folder; declare a path inside it")
        paths.append(path)
    return tuple(dict.fromkeys(paths))
