"""Read config files (nbsweep's YAML/JSON format or the seed's configs.json) and validate them."""

import json
import re
from functools import cache
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.constructor import DuplicateKeyError

from nbsweep.adapters.snakemake_internals import command_line_configfiles
from nbsweep.cache.settings import settings as cache_settings
from nbsweep.errors import SweepError, quoted, read_text
from nbsweep.model.formats import unsupported_extension
from nbsweep.model.mlflow_settings import settings as tracking_settings
from nbsweep.model.resources import standard_resources
from nbsweep.model.spec import RunSpec, SweepConfig, deep_merge

MAX_VALUES = 1_000_000
MAX_DEPTH = 64


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


@cache
def yaml_1_2() -> YAML:
    """ruamel.yaml's safe loader in pure Python: YAML 1.2 (``1e-3`` is a float, ``yes`` a string),
    and a key given twice in one mapping is an error."""
    return YAML(typ="safe", pure=True)


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def unique_pairs(pairs: list[tuple]) -> dict:
    """``object_pairs_hook`` for ``json.loads`` refusing duplicate keys."""
    mapping = {}
    for key, value in pairs:
        if key in mapping:
            raise DuplicateKey(key)
        mapping[key] = value
    return mapping


def duplicate_key_phrase(err: YAMLError) -> str:
    """'key 'x' appears twice ... (line N)' from ruamel.yaml's duplicate-key error."""
    found = re.match(r'found duplicate key "(.*?)"( with value|$)', err.problem or "", re.DOTALL)
    key = repr(found.group(1)) if found else "a key"
    mark = err.problem_mark
    return f"{key} appears twice in one mapping (the second time at line {mark.line + 1}); remove or rename one of them"


def yaml_problem(err: YAMLError) -> str:
    """One line saying where and what a YAML syntax error is."""
    mark = getattr(err, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{at}: {problem}"


def parse_document(text: str, path: Path):
    """The data of one config file's text: JSON for ``.json`` files, else YAML 1.2."""
    if path.suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=unique_pairs)
        except DuplicateKey as err:
            try:  # JSON is YAML 1.2: let the YAML reader find the line
                yaml_1_2().load(text)
            except DuplicateKeyError as located:
                raise SweepError(f"{path}: key {duplicate_key_phrase(located)}") from None
            except (YAMLError, RecursionError):
                pass
            raise SweepError(f"{path}: key {err.args[0]!r} appears twice in one object; remove or rename one of them") from None
        except json.JSONDecodeError as err:
            raise SweepError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); fix the syntax") from None
    try:
        return yaml_1_2().load(text)
    except DuplicateKeyError as err:
        raise SweepError(f"{path}: key {duplicate_key_phrase(err)}") from None
    except YAMLError as err:
        raise SweepError(f"{path} is not valid YAML{yaml_problem(err)}; fix the syntax") from None


def read_document(path: Path):
    """Parse one YAML or JSON file; any problem becomes a one-sentence SweepError."""
    text = read_text(path, "config file", "create it or pass an existing one with --configfile")
    try:
        doc = parse_document(text, path)
    except RecursionError:
        raise SweepError(f"{path} nests too deeply to read; flatten its structure") from None
    try:
        size = expanded_size(doc)
    except ValueError as err:
        raise SweepError(f"{path}: {err}") from None
    if size > MAX_VALUES:
        raise SweepError(f"{path} expands to more than {MAX_VALUES:,} values (YAML aliases?); write the values out")
    check_keys_are_text(doc, path)
    check_text_is_utf8(doc, path)
    return doc


def non_text_key(value, trail: tuple = (), seen: set | None = None) -> tuple[tuple, object] | None:
    """(where, key) of the first mapping key that is not a string (YAML ``1:``, ``true:``, a date), or None."""
    seen = set() if seen is None else seen
    if not isinstance(value, (dict, list)) or id(value) in seen:
        return None
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            return trail, key
        found = non_text_key(item, (*trail, key), seen)
        if found:
            return found
    return None


def check_keys_are_text(doc, path: Path | str) -> None:
    """Refuse keys that JSON (job files, notebooks) would silently turn into strings."""
    found = non_text_key(doc)
    if found is None:
        return
    trail, key = found
    location, inner = run_location(doc, path, trail)
    under = f" under {quoted(dotted(inner))}" if inner else " at the top level"
    raise SweepError(f"{location}: key {key}{under} is not text (YAML reads it as {type(key).__name__}); quote it, e.g. '{key}'")


def dotted(trail) -> str:
    """A place inside a document as it is written in messages: ``grid.lr[2]``."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in trail).lstrip(".")


def lone_surrogate(text: str) -> str | None:
    """The first character of ``text`` that UTF-8 cannot encode (a lone surrogate, as ``"\\ud800"``
    in YAML or JSON gives), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return text[err.start]
    return None


def non_utf8_text(value, trail: tuple = (), seen: set | None = None) -> tuple[tuple, bool, str, str] | None:
    """(where, whether it is a key, the text, its bad character) of the first key or string value
    that cannot be written as UTF-8, or None."""
    seen = set() if seen is None else seen
    if isinstance(value, str):
        bad = lone_surrogate(value)
        return None if bad is None else (trail, False, value, bad)
    if not isinstance(value, (dict, list)) or id(value) in seen:
        return None
    seen.add(id(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and (bad := lone_surrogate(key)) is not None:
            return trail, True, key, bad
        found = non_utf8_text(item, (*trail, key), seen)
        if found:
            return found
    return None


def check_text_is_utf8(doc, path: Path | str) -> None:
    """Refuse text that job files, notebooks and the summary (all UTF-8) could not store."""
    found = non_utf8_text(doc)
    if found is None:
        return
    trail, is_key, text, bad = found
    location, inner = run_location(doc, path, trail)
    if is_key:
        what = f"key {quoted(text)}" + (f" under {quoted(dotted(inner))}" if inner else " at the top level")
    else:
        what = f"the value {quoted(text)} of {quoted(dotted(inner))}" if inner else f"the value {quoted(text)}"
    raise SweepError(
        f"{location}: {what} holds the lone surrogate {repr(bad)[1:-1]}, which UTF-8 (job files, notebooks, the summary) cannot store; "
        "write the character itself instead of its \\u escape, or remove it"
    )


def run_location(doc, path: Path, trail) -> tuple[str, list]:
    """'file: run #N ('label')' for a place inside ``runs[N-1]``, and the rest of the place."""
    trail = list(trail)
    if len(trail) >= 2 and trail[0] == "runs" and isinstance(trail[1], int) and isinstance(doc, dict):
        run = doc["runs"][trail[1]]
        label = run.get("label") if isinstance(run, dict) else None
        return f"{path}: run #{trail[1] + 1}" + (f" ({quoted(label)})" if isinstance(label, str) else ""), trail[2:]
    return f"{path}", trail


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
            raise SweepError(f"{path}: entry {quoted(name)} has no output_label; add one (it names the run's output folder)")
        runs.append({"notebook": entry["notebook"], "label": entry["output_label"], "parameters": {"config": entry}})
    return {"runs": runs}


def described(error: jsonschema.ValidationError) -> str | None:
    """The description of the nearest schema around an error among alternatives (``oneOf``): what the value may be."""
    while error is not None:
        if isinstance(error.schema, dict) and error.schema.get("description"):
            return error.schema["description"].rstrip(".")
        error = error.parent
    return None


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into a short phrase a user can act on."""
    path = list(error.absolute_path)
    if len(path) >= 2 and path[0] == "runs" and isinstance(path[1], int):
        path = path[2:]  # the run itself is named by the caller
    key = ".".join(map(str, path))
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {allowed})"
    if error.validator == "required":
        return f"{error.message.replace(' is a required property', '')} is required but missing"
    if error.validator == "propertyNames":
        return f"{error.instance!r} under {quoted(key)} is not a valid name (letters, digits and _ only, not starting with a digit)"
    where = quoted(key) if key else "the value"
    if (error.validator == "oneOf" or error.parent is not None) and (wanted := described(error)):
        return f"{where} cannot be {error.instance!r} ({wanted})"
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"{where} must be {wanted}, not {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "pattern" and key == "notebook":
        return unsupported_extension(repr(error.instance))
    return f"{where}: {error.message}"


def validate(doc, path: Path | str, schema: dict) -> None:
    """Validate one normalised document against the schema; raise the clearest error."""
    if not isinstance(doc, dict):
        found = "nothing (the file is empty)" if doc is None else f"a {type(doc).__name__}"
        raise SweepError(
            f"{path} must hold a mapping with a 'runs' list (see the configuration reference, docs/configuration.md in nbsweep), not {found}"
        )
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is None:
        return
    location, _ = run_location(doc, path, error.absolute_path)
    raise SweepError(f"{location}: {_describe(error)}; see the configuration reference (docs/configuration.md in nbsweep)")


def configfile_problem(argv: list[str] | None = None) -> str | None:
    """nbsweep's sentence (without the ``nbsweep:`` prefix) for the first ``--configfile`` of a
    Snakemake command line (default: this process's) that nbsweep cannot read (or that is not a mapping),
    else None. Snakemake parses these files before any workflow code runs and names no file when it
    cannot; a logger plugin, set up before that, can show this sentence instead."""
    for path in command_line_configfiles(argv):
        try:
            doc = read_document(path)
            if not isinstance(doc, dict):
                validate(doc, path, {})
        except SweepError as err:
            return str(err)
    return None


# Snakemake's --config entries nbsweep cannot apply as Snakemake would (it replaces the list).
NOT_OVERRIDABLE = {
    "runs": "runs cannot be given with --config, as Snakemake would replace the config files' list; "
    "put them in a file and pass it with --configfile",
}


def parse_overrides(entries: list[str]) -> dict:
    """Snakemake's ``--config KEY=VALUE ...`` entries as one mapping: each value read as YAML 1.2
    (as nbsweep reads its config files; an empty value is null), later entries merged over
    earlier ones as Snakemake merges them (mappings key by key, anything else replaced)."""
    overrides: dict = {}
    for entry in entries:
        key, _, text = entry.partition("=")
        where = f"--config {entry}"
        try:
            value = yaml_1_2().load(text) if text.strip() else None
        except DuplicateKeyError as err:
            raise SweepError(f"{where}: key {duplicate_key_phrase(err)}") from None
        except YAMLError as err:
            problem = yaml_problem(err)
            raise SweepError(f"{where}: the value is not valid YAML{problem}; quote it for the shell, e.g. {key}='{{a: 1}}'") from None
        if key in NOT_OVERRIDABLE:
            raise SweepError(f"{where}: {NOT_OVERRIDABLE[key]}")
        check_keys_are_text({key: value}, where)
        check_text_is_utf8({key: value}, where)
        overrides = deep_merge(overrides, {key: value})
    return overrides


def load_config(paths: list[Path], schema: dict, overrides: list[str] = ()) -> SweepConfig:
    """Read, normalise and validate every config file; runs of all files are concatenated. Then
    Snakemake's ``--config`` entries (``overrides``) apply like one more file's keys, merged over
    the files' (``parse_overrides``)."""
    config = SweepConfig()
    mlflow = None  # the last file's `mlflow:` mapping, which --config merges into
    for path in paths:
        doc = read_document(path)
        if is_seed_format(doc):
            doc = from_seed_format(doc, path)
        validate(doc, path, schema)
        mlflow = (doc["mlflow"] or {}) if "mlflow" in doc else mlflow
        apply_settings(config, doc, str(path))
        config.runs += [RunSpec(str(path), i + 1, spec) for i, spec in enumerate(doc["runs"])]
    if overrides:
        doc = parse_overrides(list(overrides))
        where = "--config " + " ".join(overrides)
        validate(doc, where, {key: value for key, value in schema.items() if key != "required"})
        if "mlflow" in doc:
            doc["mlflow"] = deep_merge(mlflow or {}, doc["mlflow"] or {})
        apply_settings(config, doc, where)
    return config


def apply_settings(config: SweepConfig, doc: dict, where: str) -> None:
    """Apply one validated document's ``output_dir``, ``mlflow``, ``cache`` and ``defaults`` over ``config``'s."""
    config.output_dir = doc.get("output_dir", config.output_dir)
    if "cache" in doc:
        config.cache = cache_settings(doc["cache"])
    config.mlflow = tracking_settings(doc) or config.mlflow
    defaults = dict(doc.get("defaults") or {})
    if "resources" in defaults:
        defaults["resources"] = standard_resources(defaults["resources"], f"{where}: defaults")
    config.defaults = deep_merge(config.defaults, defaults)


def load_schema(path: Path) -> dict:
    """Load the JSON schema shipped beside the default config."""
    return yaml_1_2().load(Path(path).read_text(encoding="utf-8"))
