"""The Snakemake rules of runs: ``nbsweep_run`` for every run without declared outputs, and
``nbsweep_run@<template>@<label>`` for each run with some (one rule's outputs cannot vary per run).
Light to import: nbsweep's console reads them."""

RUN_RULE = "nbsweep_run"


def own_rule(name: str, label: str) -> str:
    return f"{RUN_RULE}@{name}@{label}"


def rule_run(rule: str) -> tuple[str, str] | None:
    """(name, label) of the run whose own rule this is, else None."""
    parts = rule.split("@")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == RUN_RULE else None


def is_run_rule(rule: str | None) -> bool:
    return rule == RUN_RULE or rule_run(rule or "") is not None
