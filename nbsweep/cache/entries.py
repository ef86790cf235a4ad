"""A cache entry: what one good execution left, and its manifest.

An entry holds the executed notebook, its log and rendering (``files``, by role) and the run's
declared outputs (``outputs``, by path), each as an object named by its SHA-256, plus the
execution it was and the metrics it recorded. The manifest is JSON; one that cannot be read, is of
another version, names another key or names an object by anything but a SHA-256 (a path such as
``../../x`` in a hostile store) is no entry at all.
"""

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = 1
ROLES = ("notebook", "log", "html")  # the run's own files, restored to RunFiles.target, .log, .html
SHA256 = re.compile(r"[0-9a-f]{64}")  # an object's name: never a path (a hostile manifest's "../.." is no entry)


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """``key``: the entry's key (``nbsweep.cache.keys``); ``run``: the run that executed it;
    ``execution``: the execution id its notebook records (kept when restored, so runs after it
    stay current); ``environment``: the kernel environment's digest (shared caches only)."""

    key: str
    run: str
    fingerprint: str
    execution: str
    created: str
    files: dict[str, Blob]
    outputs: dict[str, Blob] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    environment: str | None = None

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, **asdict(self)}, ensure_ascii=False, sort_keys=True)

    @property
    def blobs(self) -> list[Blob]:
        return [*self.files.values(), *self.outputs.values()]

    @property
    def size(self) -> int:
        return sum(blob.size for blob in self.blobs)


def parse(text: str | None, key: str) -> Manifest | None:
    """The manifest in ``text`` if it is a whole one of this version for ``key``, else None."""
    try:
        doc = json.loads(text) if text else None
        if not isinstance(doc, dict) or doc.pop("version", None) != VERSION or doc.get("key") != key:
            return None
        doc["files"] = {role: Blob(**blob) for role, blob in doc["files"].items()}
        doc["outputs"] = {path: Blob(**blob) for path, blob in doc.get("outputs", {}).items()}
        manifest = Manifest(**doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if "notebook" not in manifest.files or not all(
        isinstance(b.sha256, str) and SHA256.fullmatch(b.sha256) and type(b.size) is int and b.size >= 0 for b in manifest.blobs
    ):
        return None
    return manifest


def pack(record: dict, files: dict[str, Path], outputs: dict[str, str], metrics: dict) -> tuple[Manifest, dict[str, bytes | Path]]:
    """The manifest of an entry (its ``key`` and ``environment`` left for each store to fill in)
    and its objects (SHA-256 -> the content, or the file, to store): ``record``: the executed
    notebook's nbsweep record; ``files``: role -> file, read here once (a log may still grow;
    missing files are left out); ``outputs``: declared output -> its SHA-256 (as the run recorded
    it: final files, stored from their paths)."""
    objects: dict[str, bytes | Path] = {}
    blobs = {}
    for role, path in files.items():
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            continue
        sha = hashlib.sha256(content).hexdigest()
        blobs[role] = Blob(sha, len(content))
        objects[sha] = content
    kept = {}
    for path, sha in outputs.items():
        kept[path] = Blob(sha, Path(path).stat().st_size)
        objects[sha] = Path(path)
    manifest = Manifest(
        key="",
        run=record.get("run", ""),
        fingerprint=record.get("fingerprint", ""),
        execution=record.get("execution", ""),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        files=blobs,
        outputs=kept,
        metrics=metrics,
    )
    return manifest, objects
