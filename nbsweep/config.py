"""Read config files (nbsweep's YAML/JSON format or the seed's configs.json) and validate them."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from .errors import SweepError

BUILTIN_DEFAULTS = {
    "kernel": None,
    "timeout": None,
    "threads": 1,
    "resources": {"mem_mb": 1000, "runtime": 30},
    "batch_size": None,
    "parameters": {},
}
MAX_VALUES = 1_000_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class RunSpec:
    """One entry of a config file's ``runs`` list, with where it came from."""

    source: str
    position: int
    spec: dict

    def where(self) -> str:
        label = self.spec.get("label")
        name = f" ('{label}')" if isinstance(label, str) else ""
        return f"{self.source}: run #{self.position}{name}"


@dataclass
class SweepConfig:
    """The merged, validated configuration of one invocation."""

    output_dir: str = "papermill_outputs"
    defaults: dict = field(default_factory=lambda: dict(BUILTIN_DEFAULTS))
    runs: list[RunSpec] = field(default_factory=list)


def expanded_size(value, memo: dict | None = None, depth: int = 0) -> int:
    """Number of values a document holds once YAML aliases are expanded (alias bombs blow up)."""
    memo = {} if memo is None else memo
    if not isinstance(value, (dict, list)):
        return 1
    if depth > MAX_DEPTH:
        raise ValueError(f"it nests deeper than {MAX_DEPTH} levels; flatten its structure")
    if id(value) in memo:
        if memo[id(value)] is None:
            raise ValueError("a YAML alias refers to itself; remove the recursive alias")
        return memo[id(value)]
    memo[id(value)] = None
    items = value.values() if isinstance(value, dict) else value
    memo[id(value)] = 1 + sum(expanded_size(item, memo, depth + 1) for item in items)
    return memo[id(value)]


def read_document(path: Path):
    """Parse one YAML or JSON file; any problem becomes a one-sentence SweepError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SweepError(f"config file {path} does not exist; create it or pass an existing one with --configfile") from None
    except UnicodeDecodeError:
        raise SweepError(f"config file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as err:
        raise SweepError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise SweepError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); fix the syntax") from None
    except RecursionError:
        raise SweepError(f"{path} nests too deeply to read; flatten its structure") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SweepError(f"{path} is not valid YAML{at}: {problem}; fix the syntax") from None
    try:
        size = expanded_size(doc)
    except ValueError as err:
        raise SweepError(f"{path}: {err}") from None
    if size > MAX_VALUES:
        raise SweepError(f"{path} expands to more than {MAX_VALUES:,} values (YAML aliases?); write the values out")
    return doc


def is_seed_format(doc) -> bool:
    """True for the seed's configs.json: a mapping of name -> {notebook, output_label, ...}."""
    return (
        isinstance(doc, dict)
        and bool(doc)
        and "runs" not in doc
        and all(isinstance(entry, dict) and "notebook" in entry for entry in doc.values())
    )


def from_seed_format(doc: dict, path: Path) -> dict:
    """Convert seed entries to runs: label = output_label, the whole entry injected as ``config``."""
    runs = []
    for name, entry in doc.items():
        if not isinstance(entry.get("output_label"), str):
            raise SweepError(f"{path}: entry '{name}' has no output_label; add one (it names the run's output folder)")
        runs.append({"notebook": entry["notebook"], "label": entry["output_label"], "parameters": {"config": entry}})
    return {"runs": runs}


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into a short phrase a user can act on."""
    path = list(error.path)
    if path[:1] == ["runs"]:
        path = path[2:]  # the run itself is named by the caller
    key = ".".join(map(str, path))
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {allowed})"
    if error.validator == "required":
        return f"{error.message.replace(' is a required property', '')} is required but missing"
    if error.validator == "propertyNames":
        return f"{error.instance!r} under '{key}' is not a valid name (letters, digits and _ only, not starting with a digit)"
    where = f"'{key}'" if key else "the value"
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"{where} must be {wanted}, not {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "pattern" and key == "notebook":
        return f"notebook {error.instance!r} must be a path ending in .ipynb"
    return f"{where}: {error.message}"


def validate(doc, path: Path, schema: dict) -> None:
    """Validate one normalised document against the schema; raise the clearest error."""
    if not isinstance(doc, dict):
        raise SweepError(f"{path} must hold a mapping with a 'runs' list (see config/README.md), not {type(doc).__name__}")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is None:
        return
    location = f"{path}"
    if len(error.path) >= 2 and error.path[0] == "runs" and isinstance(error.path[1], int):
        run = doc["runs"][error.path[1]]
        label = run.get("label") if isinstance(run, dict) else None
        location += f": run #{error.path[1] + 1}" + (f" ('{label}')" if isinstance(label, str) else "")
    raise SweepError(f"{location}: {_describe(error)}; see config/README.md")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge mappings; values of ``override`` win."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(paths: list[Path], schema: dict) -> SweepConfig:
    """Read, normalise and validate every config file; runs of all files are concatenated."""
    config = SweepConfig()
    for path in paths:
        doc = read_document(path)
        if is_seed_format(doc):
            doc = from_seed_format(doc, path)
        validate(doc, path, schema)
        config.output_dir = doc.get("output_dir", config.output_dir)
        config.defaults = deep_merge(config.defaults, doc.get("defaults", {}))
        config.runs += [RunSpec(str(path), i + 1, spec) for i, spec in enumerate(doc["runs"])]
    return config


def load_schema(path: Path) -> dict:
    """Load the JSON schema shipped beside the default config."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)
