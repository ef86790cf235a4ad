"""What the main Snakemake process knows once it has planned, shared by the planning hooks and the console."""

from nbsweep.results import summary

# The main process's sweep and, with MLflow on, its executed notebooks as planned (remember);
# in a dry-run, why each run would execute ("reasons", hooks.job_inputs).
MAIN: dict = {}


def refresh() -> None:
    """Rewrite summary.csv/json and index.html while the sweep runs (nbsweep's console calls this
    as runs finish); silent, and a failure only waits for the final write to report it. A one-off
    run's invocation (``nbsweep run``) leaves them as they are."""
    sweep = MAIN.get("sweep")
    if sweep is None or not sweep.owner or MAIN.get("one_off"):
        return
    summary.write_results(sweep, announce=False)
