"""What a run was made from: the one home of fingerprints, their explanations and their records.

A run's *provenance* is its template's code digest, its kernel, its effective parameters (the
template's known defaults, ``nbsweep.model.parameters.known_defaults``, with the parameters given
in the config on top; canonical form),
the SHA-256 of every declared input (planned from the files now; recorded as the run started
reading them, or ``CHANGED_WHILE_READ`` for one that changed before it ended) and, for a run with
``after``, which execution of each upstream run it received. Its fingerprint decides staleness:
planning computes the planned provenance, the runner stamps the provenance it executed into the notebook's
``metadata.nbsweep``, and the run is up to date exactly when the two fingerprints agree. So the
decision needs nothing but the config, the inputs and the executed notebook, and survives losing
``.snakemake/``. ``diff`` says how a run is stale, as data (``Change``); ``explain`` as sentences.

A record keeps the given parameters (``parameters``: what papermill injected) and the template's
known defaults (``defaults``) apart, and its fingerprint hashes the two overlaid, so giving a
parameter its default value changes nothing. A record of the older form has no ``defaults``: its
fingerprint hashed the given parameters alone (``fingerprint`` reads both forms;
``nbsweep.provenance.state`` compares an older record with the plan).

Canonical JSON sorts keys, but a template that iterates over a mapping in a parameter value sees
its keys in the order papermill injected them, the config's: the order of every such mapping whose
keys are not sorted is part of the provenance (``key_order``, fingerprinted when not empty, so a run
whose mappings are sorted keeps its fingerprint). The order of the parameters themselves is not.

A run's ``secrets`` (parameter -> environment variable, names only: ``nbsweep.model.secrets``) travel
with its provenance to the runner but are not part of the fingerprint. ``accept`` re-stamps a
record with the planned provenance (``nbsweep accept``), keeping what the notebook was really
made from as ``accepted_from``.
"""

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbsweep.canonical import canonical_json, digest

FINGERPRINT_KEYS = ("template_code", "kernel", "parameters", "inputs")  # secrets are not among them
UPSTREAM_KEY = "upstream"  # fingerprinted when not empty, so runs without `after` keep their fingerprint
KEY_ORDER_KEY = "key_order"  # fingerprinted when not empty: mappings in parameter values whose keys are not sorted
DEFAULTS_KEY = "defaults"  # the template's known defaults; absent from a record of the older form
# Recorded for an input that changed while the run read it: never equal to a digest, so the run stays stale.
CHANGED_WHILE_READ = "changed while the run read it"
NOT_A_REGULAR_FILE = "is not a regular file"  # planned for an input that is a FIFO or a device, which is never read
TAIL_BYTES = 1 << 16
_TOP_METADATA = '\n "metadata": '  # nbformat writes with indent=1: only top-level keys sit at one space
_decoder = json.JSONDecoder()


def fingerprint(doc: dict) -> str:
    """A run's fingerprint: the digest of the ``FINGERPRINT_KEYS`` of a record or job document, its
    parameters being the effective ones (its ``defaults`` overlaid by its ``parameters``); in a
    record of the older form, without ``defaults``, the given ones. So a run without known
    defaults has the fingerprint it had before effective parameters were hashed."""
    keys = (*FINGERPRINT_KEYS, *(key for key in (UPSTREAM_KEY, KEY_ORDER_KEY) if doc.get(key)))
    hashed = {key: doc[key] for key in keys}
    if doc.get(DEFAULTS_KEY) is not None:
        hashed["parameters"] = {**doc[DEFAULTS_KEY], **doc["parameters"]}
    return digest(hashed)


@dataclass(frozen=True)
class Provenance:
    template_code: str
    kernel: str
    parameters: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # path -> SHA-256 of its content
    secrets: dict = field(default_factory=dict)  # parameter -> environment variable (not fingerprinted)
    upstream: dict = field(default_factory=dict)  # run named in `after` -> the execution it received
    defaults: dict | None = None  # the template's known defaults; None: a record of the older form
    key_order: dict | None = None  # None: ``key_order(parameters)``, as given (a record stores it: it keeps keys sorted)

    def __post_init__(self):
        if self.key_order is None:
            object.__setattr__(self, "key_order", key_order(self.parameters))

    @property
    def fingerprint(self) -> str:
        return fingerprint(asdict(self))

    @property
    def effective_parameters(self) -> dict:
        """The given parameters over the template's known defaults (the given ones alone in a record of the older form)."""
        return {**(self.defaults or {}), **self.parameters}

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "Provenance | None":
        """The provenance in a record or job document; None when it is incomplete."""
        try:
            return cls(
                doc["template_code"], doc["kernel"], dict(doc["parameters"]), dict(doc["inputs"]),
                dict(doc.get("secrets") or {}), dict(doc.get(UPSTREAM_KEY) or {}),
                None if doc.get(DEFAULTS_KEY) is None else dict(doc[DEFAULTS_KEY]), dict(doc.get(KEY_ORDER_KEY) or {}),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None

    def diff(self, made: "Provenance", producers: dict[str, str] | None = None) -> list["Change"]:
        """How a notebook made from ``made`` differs from this (planned) provenance, in the order
        ``explain`` tells it; ``producers``: input -> the run that writes it."""
        by = producers or {}
        found = []
        if made.template_code != self.template_code:
            found.append(Change("template code", "", made.template_code, self.template_code))
        if made.kernel != self.kernel:
            found.append(Change("kernel", "", made.kernel, self.kernel))
        if made.defaults is None:  # a record of the older form: what the config gave, then and now
            found += parameter_changes(made.parameters, self.parameters)
        else:
            found += parameter_changes(made.effective_parameters, self.effective_parameters)
        found += reorderings(made.key_order, self.key_order, [change.name for change in found if change.what == "parameter"])
        for path, sha in self.inputs.items():
            old = made.inputs.get(path)
            if path not in made.inputs:
                how = "added"
            elif sha is None:
                how = "missing"
            elif sha == NOT_A_REGULAR_FILE:
                how = NOT_A_REGULAR_FILE
            elif old == CHANGED_WHILE_READ:
                how = CHANGED_WHILE_READ
            elif old != sha:
                how = "changed"
            else:
                continue
            found.append(Change("input", path, old, sha, how, by.get(path, "")))
        found += [Change("input", path, sha, None, "removed") for path, sha in made.inputs.items() if path not in self.inputs]
        for run_id, execution in self.upstream.items():
            old = made.upstream.get(run_id)
            if run_id not in made.upstream:
                found.append(Change("upstream", run_id, None, execution, "added"))
            elif execution is None:
                found.append(Change("upstream", run_id, old, None, "missing"))
            elif old != execution:
                found.append(Change("upstream", run_id, old, execution))
        found += [Change("upstream", run_id, old, None, "removed") for run_id, old in made.upstream.items() if run_id not in self.upstream]
        return found or [Change("fingerprint", "", made.fingerprint, self.fingerprint)]


@dataclass(frozen=True)
class Change:
    """One way an executed notebook's provenance differs from the planned one.

    ``what``: "template code", "kernel", "parameter", "input", "upstream", "fingerprint", or
    "output" (a declared output that is not the file the run wrote); ``name``: the parameter
    (dotted), file path, upstream run id, or for template code the first cell that differs; ``old``/``new``: the recorded
    and planned values (digests, kernel names, parameter values, execution ids; None where absent);
    ``how``: "changed", "added", "removed", "missing", for an input ``NOT_A_REGULAR_FILE`` or
    ``CHANGED_WHILE_READ``, for template code recorded with nbsweep's older digest "older digest"; ``producer``: the run that writes an input.
    """

    what: str
    name: str = ""
    old: object = None
    new: object = None
    how: str = "changed"
    producer: str = ""


def explain(changes: list[Change]) -> list[str]:
    """The changes as sentences, parameters together in one (``nbsweep status`` shows these)."""
    sentences, parameters = [], []
    for change in changes:
        if change.what == "parameter":
            if not parameters:
                sentences.append(None)  # where the parameters sentence goes
            parameters.append(parameter_phrase(change))
        else:
            sentences.append(sentence(change))
    return [s if s is not None else "parameters changed: " + ", ".join(parameters) for s in sentences]


def sentence(change: Change) -> str:
    by = f", produced by {change.producer}" if change.producer else ""
    if change.what == "template code":
        if change.how == "older digest":
            return "recorded with nbsweep's older code digest (the code is the same)"
        if change.name:  # the template's first cell that differs (``state.naming_cells``)
            return f"template code changed in {change.name}" if change.name.startswith("cell ") else f"template code changed: {change.name}"
        return "template code changed"
    if change.what == "kernel":
        return f"kernel changed: {change.old} → {change.new}"
    if change.what == "fingerprint":
        return "fingerprint changed"
    if change.what == "input":
        return f"input {change.name} {'is missing' if change.how == 'missing' else change.how}{by}"
    if change.what == "output":
        return f"output {change.name} {'is missing' if change.how == 'missing' else 'is not what the run wrote'}"
    return {
        "added": f"runs after {change.name} now",
        "missing": f"upstream run {change.name} has not run",
        "changed": f"upstream run {change.name} executed again",
        "removed": f"no longer runs after {change.name}",
    }[change.how]


def parameter_phrase(change: Change) -> str:
    if change.how == "added":
        return f"{change.name} added ({canonical_json(change.new)})"
    if change.how == "removed":
        return f"{change.name} removed (was {canonical_json(change.old)})"
    if change.how == "reordered":
        old, new = change.old or sorted(change.new), change.new or sorted(change.old)
        return f"{change.name} keys reordered ({', '.join(old)} → {', '.join(new)})"
    return f"{change.name} {canonical_json(change.old)} → {canonical_json(change.new)}"


def execution_of(notebook: Path) -> str | None:
    """The execution a notebook records (None when it is missing or has none)."""
    return read_record(notebook).get("execution")


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested mappings as one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def key_order(value, path: str = "") -> dict[str, list[str]]:
    """The keys, in order, of every mapping inside the parameter values ``value`` whose keys are not
    in sorted order, by path (``model.steps``, ``grid[2]``); the parameters' own order is left out."""
    found = {}
    if isinstance(value, dict):
        if path and list(value) != sorted(value):
            found[path] = list(value)
        for key, item in value.items():
            found.update(key_order(item, f"{path}.{key}" if path else key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(key_order(item, f"{path}[{index}]"))
    return found


def reorderings(old: dict, new: dict, changed: list[str]) -> list[Change]:
    """A change for each mapping whose keys are the same but in another order (``old``/``new``:
    ``key_order`` of the made and planned parameters; None: sorted); mappings inside a parameter
    that ``changed`` names already are left to that change."""
    return [
        Change("parameter", path, old.get(path), new.get(path), "reordered")
        for path in sorted({*old, *new})
        if old.get(path) != new.get(path) and not any(within(path, name) or within(name, path) for name in changed)
    ]


def within(path: str, outer: str) -> bool:
    """Whether parameter path ``path`` (``a.b``, ``a[0]``) is ``outer`` or inside it."""
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


def parameter_changes(old: dict, new: dict) -> list[Change]:
    """A change for each flattened parameter that differs, was added or removed."""
    old, new = flatten(old), flatten(new)
    changes = []
    for key in [*new, *(key for key in old if key not in new)]:
        if key not in old:
            changes.append(Change("parameter", key, None, new[key], "added"))
        elif key not in new:
            changes.append(Change("parameter", key, old[key], None, "removed"))
        elif canonical_json(old[key]) != canonical_json(new[key]):
            changes.append(Change("parameter", key, old[key], new[key]))
    return changes


# --- the record in an executed notebook (metadata.nbsweep) ---


def stamp(nb, run_id: str, made: Provenance, error: dict | None, outputs: dict | None = None) -> None:
    """Record in an executed notebook what it was made from, how it ended, which execution it
    was (a fresh id) and the SHA-256 of each declared output it wrote."""
    nb.metadata["nbsweep"] = {
        "run": run_id,
        "fingerprint": made.fingerprint,
        **made.as_dict(),
        "execution": uuid.uuid4().hex,
        "status": "failed" if error else "ok",
        **({"error": error} if error else {}),
        **({"outputs": outputs} if outputs else {}),
    }


def accepted(record: dict, plan: Provenance, when: str) -> dict:
    """``record`` re-stamped as made from ``plan`` (``nbsweep accept``): what the notebook was
    executed from is kept as ``accepted_from`` (the first one, when it is accepted again)."""
    original = record.get("accepted_from") or {key: record.get(key) for key in ("fingerprint", *FINGERPRINT_KEYS, DEFAULTS_KEY)}
    return {**record, "fingerprint": plan.fingerprint, **plan.as_dict(), "accepted_from": original, "accepted_at": when}


def is_accepted(record: dict) -> bool:
    return isinstance(record.get("accepted_from"), dict)


def metadata_in(text: str, whole: bool) -> dict | None:
    """The top-level metadata of notebook JSON ``text`` (the whole file, or only its end)."""
    at = text.rfind(_TOP_METADATA)
    if at >= 0:
        try:
            value, _ = _decoder.raw_decode(text, at + len(_TOP_METADATA))
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
    if whole:  # written by something other than nbformat: parse it all
        try:
            value = json.loads(text).get("metadata")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, dict) else None
    return None


def read_metadata(path: Path) -> dict | None:
    """A notebook's top-level metadata, reading only the end of the file when that suffices."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            found = metadata_in(fh.read().decode("utf-8", "replace"), whole=size <= TAIL_BYTES)
            if found is None and size > TAIL_BYTES:
                fh.seek(0)
                found = metadata_in(fh.read().decode("utf-8", "replace"), whole=True)
    except OSError:
        return None
    return found


def record_in(metadata: dict | None) -> dict:
    """The nbsweep record of a notebook's metadata ({} when absent or malformed)."""
    value = (metadata or {}).get("nbsweep")
    return value if isinstance(value, dict) else {}


def read_record(path: Path) -> dict:
    """The nbsweep record of the notebook at ``path`` ({} when missing, unreadable or unstamped)."""
    return record_in(read_metadata(path))


def recorded(path: Path) -> Provenance | None:
    """The provenance a notebook records, if it is readable and consistent with its fingerprint.

    A truncated or hand-edited notebook, or one stamped by an older nbsweep whose record does not
    hash to its fingerprint, has no usable record: its run is stale.
    """
    return provenance_in(read_record(path))


def provenance_in(record: dict) -> Provenance | None:
    """The provenance of a record, None when it is incomplete or does not hash to its fingerprint."""
    made = Provenance.from_dict(record)
    if made is None or record.get("fingerprint") != made.fingerprint:
        return None
    return made
