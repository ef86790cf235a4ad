"""Executing one run: the job's entry point, papermill, a run's files, the warm runner."""
