"""Where MLflow tracking goes: the config's ``mlflow:`` key (``tracking_uri``, ``experiment``), read at planning."""

import os
from dataclasses import dataclass

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default: `mlflow ui` in the project shows the runs
DEFAULT_EXPERIMENT = "nbsweep"


@dataclass(frozen=True)
class Settings:
    tracking_uri: str
    experiment: str


def settings(doc: dict) -> Settings | None:
    """The tracking settings of a raw config document; None when it has no ``mlflow`` key.

    ``tracking_uri`` defaults to the ``MLFLOW_TRACKING_URI`` variable, else ``sqlite:///mlflow.db``
    (a file in the project folder); ``experiment`` to ``MLFLOW_EXPERIMENT_NAME``, else "nbsweep".
    """
    if "mlflow" not in doc:
        return None
    given = doc["mlflow"] or {}
    return Settings(
        tracking_uri=given.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI,
        experiment=given.get("experiment") or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
    )
