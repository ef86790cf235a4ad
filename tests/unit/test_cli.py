"""The nbsweep command's reports: the data of nbsweep.api, formatted."""

from nbsweep.api import Status
from nbsweep.cli.reports import status_report
from nbsweep.provenance import state


def test_status_counts_the_runs_the_next_invocation_restores_from_a_cache():
    states = [
        state.RunState("t/a", state.UP_TO_DATE),
        state.in_cache(state.RunState("t/b", state.MISSING, "not run yet"), "/cache"),
        state.in_cache(state.RunState("t/c", state.STALE, "template code changed"), "/cache"),
        state.RunState("t/d", state.MISSING, "not run yet"),
    ]
    lines = status_report(Status(states, [])).splitlines()
    assert "t/b  missing     not run yet (in cache /cache: the next invocation restores it)" in lines
    assert lines[-2:] == [
        "4 runs: 1 up to date, 1 stale, 2 missing",
        "2 of them in a run cache: the next invocation restores them instead of executing",
    ]
