"""Expand config entries into runs (defaults, grids, labels) and check them against templates."""

import errno
import itertools
import keyword
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .canonical import canonical_json, file_digest
from .config import RunSpec, SweepConfig, deep_merge
from .errors import SweepError
from .resources import standard_resources
from .templates import Template, read_template

SAFE_NAME = r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}"
_SAFE_NAME_RE = re.compile(SAFE_NAME)
RESERVED_PREFIX = "nbsweep_"  # nbsweep's own rule names; every other rule is named after a template


@dataclass(frozen=True)
class Run:
    """One notebook execution: a template, a label and everything that decides its output."""

    template: Template
    label: str
    parameters: dict
    inputs: tuple[str, ...]
    kernel: str
    timeout: int | None
    threads: int
    resources: dict
    batch_size: int | None
    origin: RunSpec

    @property
    def name(self) -> str:
        return self.template.stem

    @property
    def id(self) -> str:
        return f"{self.name}/{self.label}"


def kernel_dirs() -> list[str]:
    """Where jupyter_client looks for kernel specs; ~/.ipython/kernels found as it does, but
    without importing IPython (0.3 s of every invocation)."""
    from jupyter_core.paths import jupyter_path

    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(os.path.expanduser("~"), ".ipython")
    return [*jupyter_path("kernels"), os.path.join(ipython_dir, "kernels")]


def slug(text: str) -> str:
    """A path-safe suggestion for a rejected label."""
    cleaned = re.sub(r"[^A-Za-z0-9._+=-]+", "-", text).strip("-._+=")
    return cleaned[:128] or "run1"


def check_name(name: str, what: str, where: str) -> None:
    """Labels and template stems become folder and file names: allow a safe alphabet only."""
    if not _SAFE_NAME_RE.fullmatch(name):
        raise SweepError(
            f"{where}: {what} {name!r} is not path-safe; use 1-128 letters, digits or . _ - + = "
            f"starting with a letter or digit, e.g. {slug(name)!r}"
        )


def grid_points(grid: dict) -> list[dict]:
    """Cartesian product of a grid, in the order keys and values are written."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def format_label(pattern: str, point: dict, where: str) -> str:
    """Fill a label pattern from one grid point."""
    try:
        return pattern.format_map(point)
    except KeyError as err:
        raise SweepError(
            f"{where}: label {pattern!r} names {{{err.args[0]}}}, which is not a grid key "
            f"(grid keys: {', '.join(point)}); use only grid keys in the label"
        ) from None
    except (ValueError, IndexError, AttributeError) as err:
        raise SweepError(f"{where}: label pattern {pattern!r} is malformed ({err}); write it like 'depth{{max_depth}}'") from None


def labelled_points(spec: dict, where: str) -> list[tuple[str, dict]]:
    """(label, grid point) pairs of one config entry; an entry without a grid is one point."""
    grid = spec.get("grid")
    if not grid:
        if "label" not in spec:
            raise SweepError(f"{where}: the run has no label; add a label (it names the output folder)")
        return [(spec["label"], {})]
    pattern = spec.get("label") or "_".join(f"{key}{{{key}}}" for key in grid)
    seen = {}
    pairs = []
    for point in grid_points(grid):
        label = format_label(pattern, point, where)
        if label in seen:
            raise SweepError(
                f"{where}: label pattern {pattern!r} gives {label!r} for both {seen[label]} and {point}; "
                "put every grid key that varies into the label"
            )
        seen[label] = point
        pairs.append((label, point))
    return pairs


def non_finite_number(value, name: str = "") -> tuple[str, float] | None:
    """(dotted name, value) of the first NaN or infinity in a parameter value, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return name, value
    if isinstance(value, dict):
        items = ((f"{name}.{key}" if name else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{name}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    return next(filter(None, (non_finite_number(item, inner) for inner, item in items)), None)


def whole_seconds(timeout: float | None, where: str) -> int | None:
    """papermill's cell timeout is a whole number of seconds: a fractional one is rounded up."""
    if timeout is None:
        return None
    if not math.isfinite(timeout):
        raise SweepError(f"{where}: timeout {timeout} is not a number of seconds; give a finite number, or null for no limit")
    return math.ceil(timeout)


def check_output_dir(output_dir: str, where: str) -> None:
    """Refuse, before anything is written, an output folder that cannot hold the runs: a dangling
    or looping symlink, a file, or a folder (or nearest existing parent) this user cannot write."""
    path = Path(output_dir)
    fix = "set output_dir to a folder you can write"
    try:
        is_dir = path.is_dir() if path.exists() else None
    except OSError as err:  # ELOOP, ENAMETOOLONG, ... from following the path
        raise SweepError(f"{where}: output_dir {output_dir!r} cannot be used ({err.strerror}); {fix}") from None
    if is_dir is False:
        raise SweepError(f"{where}: output_dir {output_dir!r} is a file, not a folder; move the file or {fix}")
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            try:
                existing.stat()
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise SweepError(
                        f"{where}: output_dir {output_dir!r} runs into a symlink loop at {existing}; remove the link or {fix}"
                    ) from None
            raise SweepError(
                f"{where}: output_dir {output_dir!r} goes through the dangling symlink {existing} (to {os.readlink(existing)!r}); "
                f"create its target, remove the link, or {fix}"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise SweepError(f"{where}: output_dir {output_dir!r} is inside {existing}, which is a file; {fix}")
    if not os.access(existing, os.W_OK | os.X_OK):
        held = "is" if existing == path else f"would be created in {existing}, which is"
        raise SweepError(f"{where}: output_dir {output_dir!r} {held} read-only for this user; {fix}")


class Planner:
    """Turns a SweepConfig into validated runs, reading each template and input file once."""

    def __init__(self, config: SweepConfig, kernels: set[str] | None = None):
        self.config = config
        self._kernels = kernels
        self._templates: dict[str, Template] = {}

    def template(self, path: str, where: str) -> Template:
        if path not in self._templates:
            if "{" in path or "}" in path:
                raise SweepError(f"{where}: notebook path {path!r} contains braces, which papermill cannot handle; rename it")
            try:
                template = read_template(path)
            except SweepError as err:
                raise SweepError(f"{where}: {err}; fix the 'notebook' path") from None
            check_name(template.stem, "notebook name", where)
            if template.stem.startswith(RESERVED_PREFIX):
                raise SweepError(
                    f"{where}: notebook name {template.stem!r} starts with {RESERVED_PREFIX!r}, which names nbsweep's own rules; rename the template"
                )
            try:
                template.check_one_parameters_cell()
            except SweepError as err:
                raise SweepError(f"{where}: {err}") from None
            self._templates[path] = template
        return self._templates[path]

    @property
    def kernels(self) -> set[str]:
        if self._kernels is None:
            from jupyter_client.kernelspec import KernelSpecManager

            self._kernels = set(KernelSpecManager(kernel_dirs=kernel_dirs()).find_kernel_specs())
        return self._kernels

    def check_kernel(self, kernel: str | None, template: Template, where: str) -> str:
        if kernel is None:
            raise SweepError(
                f"{where}: {template.path} names no kernel in its metadata and the config sets none; set 'kernel' (e.g. python3)"
            )
        if kernel not in self.kernels:
            raise SweepError(
                f"{where}: kernel {kernel!r} is not installed (installed: {', '.join(sorted(self.kernels)) or 'none'}); "
                "install it or set 'kernel' to an installed one"
            )
        return kernel

    @staticmethod
    def check_parameters(names: set[str], template: Template, where: str) -> None:
        if not template.has_parameters_cell:
            return  # the seed's way: papermill injects the parameters at the top
        unknown = sorted(names - set(template.declared_parameters))
        if unknown:
            declared = ", ".join(template.declared_parameters) or "none"
            raise SweepError(
                f"{where}: parameter {', '.join(map(repr, unknown))} is not declared in the parameters cell of "
                f"{template.path} (declared: {declared}); fix the name or declare it in the template"
            )

    @staticmethod
    def check_parameter_names(names, template: Template, where: str) -> None:
        """papermill assigns each parameter as a variable: in Python, a keyword cannot be one."""
        if template.language != "python":
            return
        reserved = sorted(name for name in names if keyword.iskeyword(name))
        if reserved:
            raise SweepError(
                f"{where}: parameter {', '.join(map(repr, reserved))} is a Python keyword, so {template.path} cannot receive it "
                f"as a variable; rename it (e.g. {reserved[0] + '_'!r})"
            )

    @staticmethod
    def check_parameter_values(parameters: dict, where: str) -> None:
        """Values must be JSON: job files and executed notebooks are JSON, which has no NaN or infinity."""
        found = non_finite_number(parameters)
        if found is not None:
            name, value = found
            raise SweepError(
                f"{where}: parameter {name!r} is {value}, which JSON (job files, notebooks) cannot store; "
                "use a finite number, null, or a string such as 'nan' that the notebook converts"
            )
        try:
            canonical_json(parameters)
        except (TypeError, ValueError) as err:
            raise SweepError(
                f"{where}: a parameter value is not JSON-like ({err}); use strings, numbers, booleans, null, lists and mappings with string keys (quote dates)"
            ) from None

    def expand(self, run_spec: RunSpec) -> list[Run]:
        spec, where = run_spec.spec, run_spec.where()
        defaults = self.config.defaults
        template = self.template(spec["notebook"], where)
        kernel = self.check_kernel(spec.get("kernel", defaults["kernel"]) or template.kernelspec, template, where)
        base = deep_merge(defaults["parameters"], spec.get("parameters", {}))
        own_names = set(spec.get("parameters", {})) | set(spec.get("grid", {}))
        self.check_parameter_names(set(base) | own_names, template, where)
        self.check_parameters(own_names, template, where)
        timeout = whole_seconds(spec.get("timeout", defaults["timeout"]), where)
        resources = deep_merge(defaults["resources"], standard_resources(spec.get("resources", {}), where))
        inputs = tuple(spec.get("inputs", []))
        for path in inputs:
            if not Path(path).is_file():
                raise SweepError(f"{where}: input file {path!r} does not exist; fix the path in 'inputs'")
        runs = []
        for label, point in labelled_points(spec, where):
            check_name(label, "label", where)
            parameters = {**base, **point}
            self.check_parameter_values(parameters, where)
            runs.append(
                Run(
                    template=template,
                    label=label,
                    parameters=parameters,
                    inputs=inputs,
                    kernel=kernel,
                    timeout=timeout,
                    threads=spec.get("threads", defaults["threads"]),
                    resources=resources,
                    batch_size=spec.get("batch_size", defaults["batch_size"]),
                    origin=run_spec,
                )
            )
        return runs

    def plan(self) -> list[Run]:
        """Every run of the config, with names unique per template and templates unique per name."""
        runs: list[Run] = []
        by_id: dict[str, Run] = {}
        paths_by_name: dict[str, str] = {}
        for run_spec in self.config.runs:
            for run in self.expand(run_spec):
                other_path = paths_by_name.setdefault(run.name, run.template.path)
                if other_path != run.template.path:
                    raise SweepError(
                        f"{run.origin.where()}: templates {other_path} and {run.template.path} share the name "
                        f"{run.name!r}, so their outputs would collide; rename one of them"
                    )
                if run.id in by_id:
                    raise SweepError(
                        f"{run.origin.where()}: label {run.label!r} of {run.template.path} is already used by "
                        f"{by_id[run.id].origin.where()}; labels must be unique per template"
                    )
                by_id[run.id] = run
                runs.append(run)
        return runs


def fingerprint_material(run: Run, digests: dict[str, str]) -> dict:
    """What decides a run's output: template code, kernel, parameters and input contents."""
    for path in run.inputs:
        if path not in digests:
            digests[path] = file_digest(path)
    return {
        "template_code": run.template.code_digest,
        "kernel": run.kernel,
        "parameters": run.parameters,
        "inputs": {path: digests[path] for path in run.inputs},
    }
