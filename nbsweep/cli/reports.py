"""What ``nbsweep status``, ``accept``, ``diff`` and ``cache`` print: the data of ``nbsweep.api``, formatted."""

from collections import Counter

from nbsweep.provenance.accept import Acceptance
from nbsweep.provenance.records import explain
from nbsweep.provenance.state import MISSING, STATES, UP_TO_DATE, RunState


def states_table(states: list[RunState]) -> str:
    width = max([len("run"), *(len(s.run) for s in states)])
    state_width = max([10, *(len(s.state) for s in states)])
    lines = [f"{'run':<{width}}  {'state':<{state_width}}  detail"]
    lines += [f"{s.run:<{width}}  {s.state:<{state_width}}  {s.detail}".rstrip() for s in states]
    return "\n".join(lines)


def status_report(status) -> str:
    """The states as a table, their tally, and the outputs of runs no longer in the config."""
    counts = Counter(s.state for s in status.states)
    tally = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    report = [states_table(status.states), "", f"{len(status.states)} runs: {tally or 'none configured'}"]
    cached = sum(1 for s in status.states if s.cached)
    if cached:
        report.append(
            f"{cached} of them in a run cache: the next invocation restores {'them' if cached > 1 else 'it'} instead of executing"
        )
    found = status.orphans
    runs = f"{len(found)} run{'s' if len(found) != 1 else ''} no longer in the config"
    if status.removed or status.kept:
        report.append(f"removed the outputs of {runs}")
        report += [f"  kept {folder}/: it holds files nbsweep did not write" for folder in status.kept]
    elif found:
        report.append(f"outputs of {runs} (delete them with --remove-orphans):")
        report += [f"  {folder}/" for folder in found]
    if status.one_offs:
        count = len(status.one_offs)
        report += ["", f"{count} one-off run{'s' if count != 1 else ''} (nbsweep run; not in the config, the summary or index.html):"]
        report += [f"  {line}" for line in states_table(status.one_offs).splitlines()]
    return "\n".join(report)


def one_off_line(done) -> str:
    """What ``nbsweep run`` says once Snakemake has finished: the run's state and notebook."""
    run = done.state.run
    if done.current and done.state.state == UP_TO_DATE:
        return f"{run} is up to date, nothing executed: {done.target}"
    if done.state.state == UP_TO_DATE:
        return f"{run} executed: {done.target}"
    if done.state.state == MISSING:
        return f"{run} did not execute (see the messages above): {done.target} does not exist"
    return f"{run} is {done.state.state}: {done.state.detail or done.target}"


def accept_report(done: Acceptance, targets: list[str]) -> list[str]:
    """Lines saying what ``accept`` accepted, found current, missing or refused."""
    count = len(done.accepted)
    lines = [f"accepted {count} run{'s' if count != 1 else ''} as up to date without executing them" + (":" if count else "")]
    lines += [f"  {run_id}: {'; '.join(explain(changes))} ({path})" for run_id, changes, path in done.accepted]
    if done.current:
        lines.append(f"{len(done.current)} already up to date")
    if done.missing:
        lines.append(
            f"{len(done.missing)} not run yet, nothing to accept: {', '.join(done.missing)}"
            if targets
            else f"{len(done.missing)} not run yet"
        )
    if done.refused:
        lines.append("not accepted:")
        for run_id, changes in done.refused:
            why = (
                "; ".join(explain(changes)) + "; only template code and input changes can be accepted"
                if changes
                else "its notebook has no readable nbsweep record"
            )
            lines.append(f"  {run_id}: {why}, so run it" if changes else f"  {run_id}: {why}; run it")
    return lines


COMPARED_LINES = 10_000  # of a cell's outputs, per notebook, unless --full
SHOWN_LINES = 200  # of the diff of a cell between two notebooks, unless --full


def diff_report(comparison, full: bool = False) -> str:
    """A block per template cell: the same in every notebook, or a unified diff of each against
    the first (``full``: not cut to ``SHOWN_LINES`` lines of the first ``COMPARED_LINES``)."""
    columns = comparison.columns
    varying = comparison.varying_parameters()
    lines = [f"comparing {len(columns)} notebooks:"]
    for column in columns:
        values = ", ".join(f"{name} = {column.parameters.get(name)!r}" for name in varying if name in column.parameters)
        lines.append(f"  {column.name}  {column.notebook}" + (f"  ({values})" if values else ""))
    differing = 0
    for row in comparison.rows:
        if row.cell_type != "code":
            continue
        if row.same():
            lines.append(f"{row.title}: same in all {len(columns)}")
            continue
        differing += 1
        images = {None: "", True: "; images same", False: "; images differ"}[row.images_same()]
        lines.append(f"{row.title}: differs{images}")
        for other in range(1, len(columns)):
            if row.key(other) != row.key(0):
                lines += cut_diff(row, other, (columns[0].name, columns[other].name), full)
    code = sum(row.cell_type == "code" for row in comparison.rows)
    lines.append(f"{differing} of {code} code cells differ" if differing else f"all {code} code cells the same")
    return "\n".join(lines)


def cut_diff(row, other: int, names: tuple[str, str], full: bool) -> list[str]:
    """The indented diff of a cell's outputs in the first notebook and in ``other``, cut unless ``full``."""
    if full:
        return [f"    {line}" for line in row.unified(0, other, names)]
    diff = row.unified(0, other, names, COMPARED_LINES)
    lines = [f"    {line}" for line in diff[:SHOWN_LINES]]
    longest = max(row.lines(0), row.lines(other))
    if len(diff) > SHOWN_LINES or longest > COMPARED_LINES:
        compared = f" of the first {COMPARED_LINES:,} lines of outputs of up to {longest:,}" if longest > COMPARED_LINES else ""
        lines.append(f"    … {max(len(diff) - SHOWN_LINES, 0):,} more lines of this diff{compared} (`nbsweep diff --full` shows all)")
    return lines


def size_text(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


def cache_status_lines(found) -> list[str]:
    """``nbsweep cache status``: each cache with its entries and size, then the last invocation's hits and misses."""
    lines = [f"{'shared' if usage.shared else 'local'} cache {usage.url}: {held(usage)}" for usage in found.stores]
    lines += [f"cache {url} cannot be read: {why}" for url, why in found.unusable.items()]
    if not found.stores and not found.unusable:
        lines.append("the run cache is off (cache: false)")
    if last := found.last:
        lines.append(
            f"last invocation here ({last.get('time', '?')}): {last.get('hits', 0)} restored (hits), "
            f"{last.get('misses', 0)} looked up and not found (misses), {last.get('ignored', 0)} damaged entries ignored"
        )
    return lines


def held(usage) -> str:
    if not usage.found:
        return "nothing there (nothing written to it yet, or not mounted)"
    return f"{usage.entries} entries, {size_text(usage.size)}"


def cache_prune_lines(pruned) -> list[str]:
    return [f"cache {done.url}: removed {done.entries} entries, freed {size_text(done.size)}" for done in pruned] or ["no cache to prune"]


def cache_forget_lines(removed: dict[str, int]) -> list[str]:
    return [f"cache {url}: forgot {count} entries" for url, count in removed.items()] or ["no cache to forget entries in"]
