"""Canonical JSON and content hashes: the basis of every staleness decision."""

import hashlib
import json


def _reject(value):
    kind = type(value).__name__
    raise TypeError(f"a {kind} value ({value!r}) is not JSON-like")


def canonical_json(value) -> str:
    """Serialise ``value`` so that key order and formatting never change the text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject)


def digest(value) -> str:
    """SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
