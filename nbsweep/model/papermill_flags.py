"""Parameters and settings given with papermill's command-line flags, read as papermill reads them (``nbsweep run``).

``-p NAME VALUE`` is typed by papermill's own rule (True, False, None, int, float, else text),
``-r NAME VALUE`` stays text, ``-y TEXT``, ``-f FILE`` and ``-b BASE64`` are YAML mappings read with
papermill's loader (YAML 1.1, dates kept as text). As in papermill 2.7, later kinds win whatever
their order on the command line: ``-b``, then ``-f``, ``-y``, ``-p``, ``-r``; within a kind, later flags win.
``-k``/``--kernel`` and ``--execution-timeout`` mean what the config's ``kernel`` and ``timeout`` mean;
papermill's other flags are refused (``UNSUPPORTED``), each with the reason.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass, field

import yaml

from nbsweep.adapters import papermill_internals
from nbsweep.errors import SweepError, quoted, read_text


@dataclass
class Flags:
    """The flags as given, each kind in command-line order."""

    parameters: list[tuple[str, str]] = field(default_factory=list)  # -p
    parameters_raw: list[tuple[str, str]] = field(default_factory=list)  # -r
    parameters_yaml: list[str] = field(default_factory=list)  # -y
    parameters_file: list[str] = field(default_factory=list)  # -f
    parameters_base64: list[str] = field(default_factory=list)  # -b
    kernel: str | None = None  # -k, --kernel
    execution_timeout: str | None = None  # --execution-timeout


# papermill 2.7's other flags, and why a run through nbsweep cannot take them.
OUTPUT_TO_LOG = "each run's output is written to its log beside the notebook"
PARTIAL = "papermill writes a hidden partial notebook, moved into place only on success"
UNSUPPORTED = {
    "--cwd": "runs execute in the project folder, so that relative paths work in every run",
    "--language": "the language is the kernel's; choose the kernel with -k",
    "-l": "the language is the kernel's; choose the kernel with -k",
    "--engine": "runs execute with papermill's default engine",
    "--prepare-only": "a run's notebook is always executed",
    "--prepare-execute": "a run's notebook is always executed",
    "--inject-input-path": "pass the path as a parameter with -p",
    "--inject-output-path": "pass the path as a parameter with -p",
    "--inject-paths": "pass the paths as parameters with -p",
    "--log-output": OUTPUT_TO_LOG,
    "--no-log-output": OUTPUT_TO_LOG,
    "--stdout-file": OUTPUT_TO_LOG,
    "--stderr-file": OUTPUT_TO_LOG,
    "--log-level": OUTPUT_TO_LOG,
    "--progress-bar": "nbsweep's console shows the run's progress",
    "--no-progress-bar": "nbsweep's console shows the run's progress",
    "--start-timeout": "kernels are started by nbsweep's runner",
    "--start_timeout": "kernels are started by nbsweep's runner",
    "--request-save-on-cell-execute": PARTIAL,
    "--no-request-save-on-cell-execute": PARTIAL,
    "--autosave-cell-every": PARTIAL,
    "--report-mode": "the notebook keeps its inputs",
    "--no-report-mode": "the notebook keeps its inputs",
    "--help-notebook": "list a template's parameters with `nbsweep params TEMPLATE`",
}


def unsupported(args: list[str]) -> str | None:
    """The sentence refusing the first papermill flag in ``args`` that nbsweep run does not take, or None."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in UNSUPPORTED:
            return f"nbsweep run does not take papermill's {flag}: {UNSUPPORTED[flag]}"
    return None


def settings(flags: Flags) -> dict:
    """The run settings papermill's flags give, as config entry keys (``kernel``, ``timeout``)."""
    found: dict = {}
    if flags.kernel is not None:
        found["kernel"] = flags.kernel
    if flags.execution_timeout is not None:
        try:
            found["timeout"] = int(flags.execution_timeout)
        except ValueError:
            raise SweepError(
                f"--execution-timeout {quoted(flags.execution_timeout)} is not a whole number of seconds; give e.g. 600"
            ) from None
    return found


def parameters(flags: Flags) -> dict:
    """The merged parameters; a flag papermill could not use, or a value nbsweep cannot pass on, is a SweepError."""
    merged: dict = {}
    for text in flags.parameters_base64:
        merged.update(mapping(decoded(text), f"-b {text}"))
    for path in flags.parameters_file:
        merged.update(mapping(file_text(path), f"parameters file {path}"))
    for text in flags.parameters_yaml:
        merged.update(mapping(text, f"-y {quoted(text)}"))
    for name, value in flags.parameters:
        merged[name] = papermill_internals.resolve_type(value)
    for name, value in flags.parameters_raw:
        merged[name] = value
    check_values(merged)
    return merged


def decoded(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SweepError(f"-b {quoted(text)} is not base64-encoded UTF-8 text; encode the YAML mapping, e.g. with base64") from None


def file_text(path: str) -> str:
    return read_text(path, "parameters file", "check the path given with -f")


def mapping(text: str, where: str) -> dict:
    """A YAML mapping of parameters as papermill reads it; an empty document is no parameters."""
    try:
        doc = yaml.load(text, Loader=papermill_internals.yaml_loader())  # noqa: S506 -- a safe loader (yaml.SafeLoader's subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SweepError(f"{where} is not valid YAML{at}; write a mapping of names to values, e.g. 'lr: 0.1'") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SweepError(f"{where} is a YAML {type(doc).__name__}, not a mapping of names to values; write e.g. 'lr: 0.1'")
    for name in doc:
        if not isinstance(name, str):
            raise SweepError(f"{where}: parameter name {quoted(name)} is not text; quote it or use a Python name")
    return doc


def check_values(merged: dict) -> None:
    """Every value must be data a config can hold (JSON: no binary, no sets, finite numbers)."""
    for name, value in merged.items():
        try:
            json.dumps(value, allow_nan=False, default=refuse)
        except (TypeError, ValueError):
            kind = "a number that is not finite" if non_finite(value) else f"{type(value).__name__} data"
            raise SweepError(
                f"parameter {quoted(name)} is {kind}, which nbsweep cannot pass to a run; give text, numbers, booleans, lists or mappings"
            ) from None


def refuse(value):
    raise TypeError(type(value).__name__)


def non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(non_finite(v) for v in value)
    return False
