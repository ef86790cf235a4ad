"""What an executed notebook says: nbsweep's and papermill's metadata, the metrics ``record`` left, its defaults.

Read from the bytes (metadata from the end of the file, where nbformat writes it), so a large
notebook is not parsed whole.
"""

import json
import re
from pathlib import Path

from nbsweep import MIME
from nbsweep.model.parameters import declared_defaults
from nbsweep.provenance.records import metadata_in

_METRICS = re.compile(re.escape(f'"{MIME}": '))
_decoder = json.JSONDecoder()


def read_result(path: Path) -> tuple[dict, dict]:
    """(metadata, metrics) of an executed notebook; empty where it is missing or unreadable."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return {}, {}
    metrics = {}
    for match in _METRICS.finditer(text):  # escaped inside cell sources, so only real outputs match
        try:
            value, _ = _decoder.raw_decode(text, match.end())
        except ValueError:
            continue
        if isinstance(value, dict):
            metrics.update(value)
    return metadata_in(text, whole=True) or {}, metrics


def mapping(parent: dict, key: str) -> dict:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def executed_defaults(notebook: Path) -> dict:
    """The declared defaults in an executed notebook's own parameters cell (papermill keeps it)."""
    try:
        return declared_defaults(json.loads(notebook.read_bytes()))
    except (OSError, ValueError, AttributeError):
        return {}
