"""The configuration as data: the merged config of one invocation and each of its run entries."""

from dataclasses import dataclass, field

from nbsweep.cache import settings as cache_settings
from nbsweep.errors import quoted
from nbsweep.model.mlflow_settings import Settings

BUILTIN_DEFAULTS = {
    "kernel": None,
    "timeout": None,
    "threads": 1,
    "resources": {"mem_mb": 1000, "runtime": 30},
    "batch_size": None,
    "render": True,
    "preload": True,  # the template's own imports (nbsweep.model.imports)
    "check_types": True,
    "parameters": {},
}


@dataclass(frozen=True)
class RunSpec:
    """One entry of a config file's ``runs`` list, with where it came from."""

    source: str
    position: int
    spec: dict

    def where(self) -> str:
        label = self.spec.get("label")
        name = f" ({quoted(label)})" if isinstance(label, str) else ""
        return f"{self.source}: run #{self.position}{name}"


@dataclass
class SweepConfig:
    """The merged, validated configuration of one invocation."""

    output_dir: str = "papermill_outputs"
    defaults: dict = field(default_factory=lambda: dict(BUILTIN_DEFAULTS))
    runs: list[RunSpec] = field(default_factory=list)
    mlflow: "Settings | None" = None  # MLflow tracking (config key `mlflow:`); None = off
    cache: "cache_settings.Settings | None" = field(default_factory=cache_settings.defaults)  # the run cache (`cache:`); None = off


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge mappings; values of ``override`` win."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
