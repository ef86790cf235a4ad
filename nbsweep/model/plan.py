"""Expand config entries into runs (defaults, grids, labels) and check them against templates."""

import errno
import glob
import itertools
import keyword
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from nbsweep import layout
from nbsweep.adapters import snakemake_internals as smk
from nbsweep.canonical import canonical_json
from nbsweep.errors import SweepError, quoted
from nbsweep.kernels.kernelspec import kernels_for_language
from nbsweep.model.parameters import type_mismatch
from nbsweep.model.pipeline import fill_outputs, link_runs
from nbsweep.model.resources import standard_resources
from nbsweep.model.secrets import run_secrets
from nbsweep.model.spec import RunSpec, SweepConfig, deep_merge
from nbsweep.model.templates import Template, read_template

SAFE_NAME = r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}"
_SAFE_NAME_RE = re.compile(SAFE_NAME)
RESERVED_PREFIX = "nbsweep_"  # nbsweep's own rule names; every other rule is named after a template
MAX_RUNS = 100_000  # runs one invocation plans, over all its config files and grids (docs/configuration.md#limits)


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
    secrets: dict = field(default_factory=dict)  # parameter -> environment variable (nbsweep.model.secrets)
    render: bool = True  # write an HTML rendering beside the executed notebook
    preload: tuple[str, ...] = ()  # modules a warm spare imports before the run (not in the fingerprint)
    preload_imports: bool = False  # preload is the template's imports: only those installed for the kernel are imported
    outputs: tuple[str, ...] = ()  # files the notebook writes (nbsweep.model.pipeline)
    produced: tuple[tuple[str, str], ...] = ()  # (input, id of the run that writes it)
    after: tuple[tuple[str, str], ...] = ()  # (id, target notebook) of the runs named in `after`

    @property
    def name(self) -> str:
        return self.template.stem

    @property
    def id(self) -> str:
        return f"{self.name}/{self.label}"


def run_preload(setting, template: Template, where: str) -> tuple[tuple[str, ...], bool]:
    """What a run preloads (config key ``preload``): its modules, and whether they are the template's
    own imports (``true``, the default), of which the warm runner imports those installed for the kernel."""
    if setting is True:
        return template.imports, True
    modules = tuple(setting or ())
    if modules and template.language != "python":
        raise SweepError(
            f"{where}: 'preload' imports Python modules, but {template.path} is in {template.language}; remove 'preload' for it"
        )
    return modules, False


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
            f"{where}: {what} {quoted(name)} is not path-safe; use 1-128 letters, digits or . _ - + = "
            f"starting with a letter or digit, e.g. {quoted(slug(name))}"
        )
    if repeated := smk.periodic_part(name):
        part, times = repeated
        shorter = f"{name[: len(name) - len(part) * times]}{part}x{times}"
        raise SweepError(
            f"{where}: {what} {quoted(name)} ends in {quoted(part)} repeated {times} times, which Snakemake refuses in a "
            f"file name pattern (it takes it for an endless recursion); write the repetition shorter, e.g. {quoted(shorter)}"
        )


class PathText(str):
    """A text parameter value that label and input patterns may also take apart as a path:
    ``{data.stem}``, ``{data.name}`` (``{data}`` is the text itself)."""

    @property
    def stem(self) -> str:
        return Path(self).stem

    @property
    def name(self) -> str:
        return Path(self).name


def glob_values(key: str, pattern: str, where: str) -> list[str]:
    """The files (not folders) matching a grid's ``{glob: pattern}``, sorted; none is an error."""
    matches = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
    if not matches:
        raise SweepError(f"{where}: grid key {key!r}: glob {pattern!r} matches no file; fix the pattern or add the files")
    return matches


def resolve_grid(grid: dict, where: str, files=glob_values) -> tuple[dict, set[str]]:
    """The grid with every ``{glob: pattern}`` replaced by its ``files``, and the keys that were globs."""
    values, globbed = {}, set()
    for key, given in grid.items():
        if isinstance(given, dict):
            values[key], globbed = files(key, given["glob"], where), globbed | {key}
        else:
            values[key] = given
    return values, globbed


def grid_size(grid: dict) -> int:
    """How many runs a grid (its globs resolved) gives: the product of its value counts, computed
    without expanding it."""
    return math.prod(len(values) for values in grid.values())


def check_run_count(grid: dict, planned: int, where: str) -> None:
    """Refuse a grid (its globs resolved; ``{}`` for a run without one) that gives more than
    ``MAX_RUNS`` runs, or that brings the ``planned`` runs of the entries before it beyond that."""
    size = grid_size(grid)
    fix = "split the sweep over config files run one after another (--configfile)"
    if size > MAX_RUNS:
        counts = ", ".join(f"{key}: {len(values):,}" for key, values in grid.items())
        raise SweepError(
            f"{where}: its grid gives {size:,} runs, the product of its keys' value counts ({counts}), more than the {MAX_RUNS:,} nbsweep plans at once; reduce its values or {fix}"
        )
    if planned + size > MAX_RUNS:
        gives = f"its grid's {size:,} runs bring" if grid else "it brings"
        raise SweepError(f"{where}: {gives} the config to {planned + size:,} runs, more than the {MAX_RUNS:,} nbsweep plans at once; {fix}")


def grid_points(grid: dict) -> list[dict]:
    """Cartesian product of a grid, in the order keys and values are written."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def pattern_fields(point: dict) -> dict:
    """A grid point as label and input patterns see it: text values also as paths (``PathText``)."""
    return {key: PathText(value) if isinstance(value, str) else value for key, value in point.items()}


_PRIVATE_FIELD = re.compile(r"\{[^{}]*?[.\[]_")  # {x.__class__}, {x[_a]}: a pattern reaches into no object's internals


def fill(pattern: str, point: dict, what: str, where: str) -> str:
    """Fill a label or input pattern from one grid point (``{{`` and ``}}`` are literal braces)."""
    try:
        if _PRIVATE_FIELD.search(pattern.replace("{{", "").replace("}}", "")):
            raise ValueError("a field names an attribute or item that starts with '_'")
        return pattern.format_map(pattern_fields(point))
    except KeyError as err:
        keys = ", ".join(point) or "none"
        raise SweepError(
            f"{where}: {what} {pattern!r} names {{{err.args[0]}}}, which is not a grid key "
            f"(grid keys: {keys}); use only grid keys, or write {{{{ and }}}} for literal braces"
        ) from None
    except (ValueError, IndexError, AttributeError, TypeError) as err:
        raise SweepError(
            f"{where}: {what} pattern {pattern!r} is malformed ({err}); write it like 'depth{{max_depth}}' or 'data/{{dataset}}.csv'"
        ) from None


def format_label(pattern: str, point: dict, where: str) -> str:
    """Fill a label pattern from one grid point."""
    return fill(pattern, point, "label", where)


def default_label_pattern(grid: dict, globbed: set[str]) -> str:
    """``key1{key1}_key2{key2}``; a glob key contributes its files' stem alone (``{data.stem}``)."""
    return "_".join(f"{{{key}.stem}}" if key in globbed else f"{key}{{{key}}}" for key in grid)


def labelled_points(spec: dict, where: str, files=glob_values) -> list[tuple[str, dict]]:
    """(label, grid point) pairs of one config entry; an entry without a grid is one point.
    ``files``: the files of a glob key (``glob_values``)."""
    if not spec.get("grid"):
        if "label" not in spec:
            raise SweepError(f"{where}: the run has no label; add a label (it names the output folder)")
        return [(spec["label"], {})]
    grid, globbed = resolve_grid(spec["grid"], where, files)
    pattern = spec.get("label") or default_label_pattern(grid, globbed)
    seen = {}
    pairs = []
    for point in grid_points(grid):
        label = format_label(pattern, point, where)
        if label in seen:
            raise SweepError(
                f"{where}: label pattern {quoted(pattern)} gives {quoted(label)} for both {seen[label]} and {point}; "
                "put every grid key that varies into the label"
            )
        seen[label] = point
        pairs.append((label, point))
    return pairs


def run_inputs(spec: dict, point: dict, where: str) -> tuple[str, ...]:
    """A run's input files: its ``inputs`` patterns filled from its grid point, then the values of
    its glob keys; each once, in that order."""
    paths = [fill(pattern, point, "input", where) for pattern in spec.get("inputs", [])]
    globbed = [key for key, given in spec.get("grid", {}).items() if isinstance(given, dict)]
    return tuple(dict.fromkeys([*paths, *(point[key] for key in globbed)]))


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


def article(word: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def check_label(label: str, point: dict, where: str) -> None:
    """``check_name`` for a label; one filled with a path suggests the path's stem."""
    paths = [key for key, value in point.items() if isinstance(value, str) and "/" in value and value in label]
    if paths and not _SAFE_NAME_RE.fullmatch(label):
        raise SweepError(
            f"{where}: label {quoted(label)} is not path-safe, as grid key {quoted(paths[0])} is a path; "
            f"use {{{paths[0]}.stem}} or {{{paths[0]}.name}} in the label pattern"
        )
    check_name(label, "label", where)


class Planner:
    """Turns a SweepConfig into validated runs, reading each template and input file once."""

    def __init__(self, config: SweepConfig, kernels: set[str] | None = None):
        self.config = config
        self._kernels = kernels
        self._kernel_languages: dict[str, str] | None = None
        self._templates: dict[str, Template] = {}
        self._files: dict[str, bool] = {}  # input path -> whether it is a file, checked once
        self._globbed: dict[str, list[str]] = {}  # glob pattern -> its files, listed once

    def template(self, path: str, where: str) -> Template:
        if path not in self._templates:
            if "{" in path or "}" in path:
                raise SweepError(f"{where}: notebook path {path!r} contains braces, which papermill cannot handle; rename it")
            try:
                template = read_template(path)
            except SweepError as err:
                raise SweepError(f"{where}: {err}") from None
            check_name(template.stem, "notebook name", where)
            if template.stem.startswith(RESERVED_PREFIX):
                raise SweepError(
                    f"{where}: notebook name {quoted(template.stem)} starts with {RESERVED_PREFIX!r}, which names nbsweep's own rules; rename the template"
                )
            if (results_file := layout.results_file_named(template.stem)) is not None:
                folder = Path(self.config.output_dir, template.stem)
                renamed = Path(path).with_name(template.stem.replace(".", "_") + Path(path).suffix).name
                raise SweepError(
                    f"{where}: template {path} would keep its runs in {folder}, where nbsweep writes its own {results_file}; "
                    f"rename the template, e.g. to {renamed}"
                )
            try:
                template.check_one_parameters_cell()
            except SweepError as err:
                raise SweepError(f"{where}: {err}") from None
            self._templates[path] = template
        return self._templates[path]

    def glob_files(self, key: str, pattern: str, where: str) -> list[str]:
        """``glob_values``, listed once per pattern."""
        if pattern not in self._globbed:
            self._globbed[pattern] = glob_values(key, pattern, where)
        return self._globbed[pattern]

    def check_run_counts(self) -> None:
        """Refuse a config of more than ``MAX_RUNS`` runs before expanding any grid of it."""
        planned = 0
        for run_spec in self.config.runs:
            grid, _ = resolve_grid(run_spec.spec.get("grid") or {}, run_spec.where(), self.glob_files)
            check_run_count(grid, planned, run_spec.where())
            planned += grid_size(grid)

    def is_file(self, path: str) -> bool:
        if path not in self._files:
            self._files[path] = Path(path).is_file()
        return self._files[path]

    @property
    def kernels(self) -> set[str]:
        if self._kernels is None:
            from jupyter_client.kernelspec import KernelSpecManager

            self._kernels = set(KernelSpecManager(kernel_dirs=kernel_dirs()).find_kernel_specs())
        return self._kernels

    @property
    def kernel_languages(self) -> dict[str, str]:
        """Installed kernelspec name -> its language (read only for a template that names no kernel)."""
        if self._kernel_languages is None:
            from jupyter_client.kernelspec import KernelSpecManager

            specs = KernelSpecManager(kernel_dirs=kernel_dirs()).get_all_specs()
            self._kernel_languages = {name: found.get("spec", {}).get("language", "") for name, found in specs.items()}
        return self._kernel_languages

    def language_kernel(self, template: Template, where: str) -> str:
        """The kernel of a template that names none and has none set: the one installed for its language."""
        language = template.language
        found = kernels_for_language(language, self.kernel_languages)
        if len(found) == 1:
            return found[0]
        if found:
            what, fix = f"{len(found)} installed kernels run {language} ({', '.join(found)})", "set 'kernel' to one of them"
        else:
            installed = ", ".join(sorted(self.kernel_languages)) or "none"
            what, fix = f"no installed kernel runs {language} (installed: {installed})", "install a kernel for it or set 'kernel'"
        raise SweepError(f"{where}: {template.path} names no kernel and the config sets none, and {what}; {fix}")

    def check_kernel(self, kernel: str | None, template: Template, where: str) -> str:
        if kernel is None:
            kernel = self.language_kernel(template, where)
        if kernel not in self.kernels:
            raise SweepError(
                f"{where}: kernel {kernel!r} is not installed (installed: {', '.join(sorted(self.kernels)) or 'none'}); "
                "install it or set 'kernel' to an installed one"
            )
        return kernel

    @staticmethod
    def check_parameters(names: set[str], template: Template, where: str) -> None:
        if not template.has_parameters_cell or template.declared_parameters is None:
            return  # the seed's way (papermill injects the parameters at the top), or a language nbsweep cannot read
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
    def check_types(parameters: dict, template: Template, label: str, where: str) -> None:
        """Each value of a declared parameter must be of its declared type (``type_mismatch``)."""
        for declared in template.declarations or []:
            name, type_name = declared.name, declared.type_name
            if name not in parameters or (given := type_mismatch(type_name, parameters[name], declared.annotated)) is None:
                continue
            if given == "null":
                raise SweepError(
                    f"{where}: run {template.stem}/{label} gives parameter {name!r} null, but {template.path} annotates it {type_name}, "
                    f"which excludes None; give {article(type_name)} value, annotate it {type_name} | None, or set check_types: false"
                )
            raise SweepError(
                f"{where}: run {template.stem}/{label} gives parameter {name!r} {article(given)} ({canonical_json(parameters[name])[:60]}), "
                f"but {template.path} declares it {type_name}; give {article(type_name)} value, or set check_types: false"
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
        secrets = run_secrets(deep_merge(defaults.get("secrets", {}), spec.get("secrets", {})), template, set(base) | own_names, where)
        timeout = whole_seconds(spec.get("timeout", defaults["timeout"]), where)
        resources = deep_merge(defaults["resources"], standard_resources(spec.get("resources", {}), where))
        check_types = spec.get("check_types", defaults["check_types"])
        preload, imports = run_preload(spec.get("preload", defaults["preload"]), template, where)
        runs = []
        for label, point in labelled_points(spec, where, self.glob_files):
            check_label(label, point, where)
            inputs = run_inputs(spec, point, where)
            for path in inputs:
                if "{" in path or "}" in path:
                    raise SweepError(
                        f"{where}: input file {path!r} of run {label!r} has braces in its name, which Snakemake reads as wildcards; rename the file"
                    )
            parameters = {**base, **point}
            self.check_parameter_values(parameters, where)
            if check_types:
                self.check_types(parameters, template, label, where)
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
                    secrets=secrets,
                    render=spec.get("render", defaults["render"]),
                    preload=preload,
                    preload_imports=imports,
                    outputs=fill_outputs(spec, point, fill, where),
                )
            )
        return runs

    def plan(self) -> list[Run]:
        """Every run of the config, with names unique per template and templates unique per name,
        linked into a graph without cycles (``nbsweep.model.pipeline``)."""
        runs: list[Run] = []
        by_id: dict[str, Run] = {}
        paths_by_name: dict[str, str] = {}
        self.check_run_counts()
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
        return link_runs(runs, self.config.output_dir, self.is_file)
