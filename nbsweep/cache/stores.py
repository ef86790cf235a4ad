"""One cache store, through fsspec: a local folder, a shared filesystem or ``s3://bucket/prefix`` alike.

A store holds payload *objects* named by their SHA-256 (``objects/ab/<sha>``) and one *manifest*
per entry (``entries/ab/<key>.json``), which lists the objects of the entry with their SHA-256
(``nbsweep.cache.entries``). A writer puts the objects first and the manifest last, so an entry
without a manifest does not exist, and a reader checks every object against its SHA-256: an
entry cut short by a killed writer, or with a damaged object, is never restored. Each write is
atomic where the filesystem allows it (a temporary name, then a rename, in a folder; a single
PUT in an object store), and two writers of one key at once each write a complete entry (the
last manifest wins; the other's objects are left for ``nbsweep.cache.upkeep`` to remove).

Credentials for ``s3://`` come from the usual AWS environment and files (and the endpoint from
``AWS_ENDPOINT_URL``, which botocore reads), never from the config.
"""

import errno
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from nbsweep.files import UnusableFile, open_regular, read_regular

CHUNK = 1 << 20
AT_ONCE = 64 << 20  # bytes read together (in memory) from a remote store at most
MANIFEST_LIMIT = 16 << 20  # bytes of one manifest at most: a longer one, a FIFO or a device is no entry
# An unreachable object store fails in seconds, not after botocore's minutes of retries.
S3_OPTIONS = {"config_kwargs": {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}}
TEMPORARY = ".tmp-"  # in the name of an object or manifest being written to a folder
_folders: set[str] = set()  # folders of a store this process has made (or found)


class VerificationError(Exception):
    """An entry that fails its check: an object whose content is not its SHA-256 (damaged, or cut
    short; ``sha`` names it), or a notebook that records another fingerprint."""

    def __init__(self, message: str, sha: str | None = None):
        super().__init__(message)
        self.sha = sha


class MissingObject(VerificationError):
    """An object a manifest names that the store does not hold (never written, or removed since)."""


class Store:
    """A cache at ``url``; ``shared``: beyond this machine (its keys include the kernel's environment)."""

    def __init__(self, url: str, shared: bool):
        from fsspec.core import url_to_fs  # here: fsspec's import costs a planning that reads no cache 0.1-0.3 s

        self.url = url
        self.shared = shared
        options = S3_OPTIONS if url.startswith(("s3://", "s3a://")) else {}
        self.fs, self.root = url_to_fs(url, **options)
        self.root = self.root.rstrip("/")
        self.is_folder = "file" in self.fs.protocol

    def object_path(self, sha: str) -> str:
        return f"{self.root}/objects/{sha[:2]}/{sha}"

    def manifest_path(self, key: str) -> str:
        return f"{self.root}/entries/{key[:2]}/{key}.json"

    # --- writing ---

    def put_object(self, sha: str, source: bytes | Path) -> None:
        """Store ``source`` (content, or a file), whose SHA-256 is ``sha`` (skipped when the store
        has an object of that name and size: objects are named by content)."""
        path = self.object_path(sha)
        size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
        if self.has_object(sha, size):
            self.refresh(path)  # a prune leaves recent objects alone: this entry is about to name it
            return
        if isinstance(source, bytes):
            self._write(path, lambda where: self.fs.pipe_file(where, source))
        else:
            self._write(path, lambda where: self.fs.put_file(str(source), where))

    def put_entry(self, manifest, objects: dict[str, bytes | Path]) -> None:
        """Store an entry: its objects (SHA-256 -> content, or a file) first, its manifest
        (``nbsweep.cache.entries.Manifest``, under its ``key``) last. A per-user (not shared)
        folder is made for its user's eyes only."""
        if not self.shared and self.is_folder:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        for sha, source in objects.items():
            self.put_object(sha, source)
        self.put_manifest(manifest.key, manifest.to_json())

    def put_manifest(self, key: str, text: str) -> None:
        """Store an entry's manifest: written last, it makes the entry exist."""
        self._write(self.manifest_path(key), lambda where: self.fs.pipe_file(where, text.encode("utf-8")))

    def _write(self, path: str, write) -> None:
        """``write(where)`` the content, atomically: in a folder to a temporary name renamed into
        place; elsewhere (an object store's single PUT) straight to ``path``."""
        if not self.is_folder:
            write(path)
            return
        folder = os.path.dirname(path)
        if folder not in _folders:
            os.makedirs(folder, exist_ok=True)
            _folders.add(folder)
        temporary = f"{path}{TEMPORARY}{uuid.uuid4().hex}"
        try:
            write(temporary)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def probe(self) -> None:
        """Raise what writing an entry would raise, at once (read-only, unreachable, no such
        bucket): an empty file is written and removed; a folder is made if missing, for its user
        alone when not shared."""
        if not self.is_folder:
            path = f"{self.root}/{TEMPORARY}probe-{uuid.uuid4().hex}"
            self.fs.pipe_file(path, b"")
            self.remove_path(path)
            return
        os.makedirs(self.root, **({} if self.shared else {"mode": 0o700}), exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=TEMPORARY):
            pass

    # --- reading ---

    def read_manifest(self, key: str) -> str | None:
        """An entry's manifest as text; None when the store has none for ``key``, or what it has
        is no regular file of at most ``MANIFEST_LIMIT`` bytes (never waited on or read to its end)."""
        path = self.manifest_path(key)
        try:
            if self.is_folder:
                return read_regular(path, MANIFEST_LIMIT).decode("utf-8", "replace")
            return None if self.fs.size(path) > MANIFEST_LIMIT else self.fs.cat_file(path).decode("utf-8", "replace")
        except (FileNotFoundError, UnusableFile):
            return None

    def read_manifests(self, keys) -> dict[str, str | None]:
        """The manifests of ``keys`` as ``read_manifest`` gives them, read concurrently where the
        filesystem can (fsspec's ``cat`` of a list: s3fs sends the requests at once); the first
        error other than a missing manifest is raised."""
        paths = {self.manifest_path(key): key for key in keys}
        if not paths:
            return {}
        if self.is_folder:
            return {key: self.read_manifest(key) for key in paths.values()}
        # At most MANIFEST_LIMIT + 1 bytes of each; S3 refuses a range of an empty object: read alone.
        found = self.fs.cat_ranges(list(paths), [0] * len(paths), [MANIFEST_LIMIT + 1] * len(paths), on_error="return")
        texts = {}
        for key, content in zip(paths.values(), found, strict=True):
            if isinstance(content, FileNotFoundError):
                texts[key] = None
            elif isinstance(content, BaseException):
                texts[key] = self.read_manifest(key)
            else:
                texts[key] = None if len(content) > MANIFEST_LIMIT else content.decode("utf-8", "replace")
        return texts

    def has_object(self, sha: str, size: int) -> bool:
        try:
            return self.fs.size(self.object_path(sha)) == size
        except FileNotFoundError:
            return False

    def fetch(self, sha: str, destination: Path, size: int | None = None) -> None:
        """Copy object ``sha`` to ``destination``, checking its SHA-256 on the way (VerificationError
        when it differs; ``destination`` is then removed). With the ``size`` its manifest gives, no
        more is read than that (an object that is longer, or in a folder no regular file, such as a
        link to ``/dev/zero`` or a FIFO, fails at once instead of being read forever)."""
        hasher, read, limit = hashlib.sha256(), 0, None if size is None else size + 1
        path = self.object_path(sha)
        try:
            source = open_regular(path, limit) if self.is_folder else self.fs.open(path, "rb")
            with source, open(destination, "wb") as out:
                while (limit is None or read < limit) and (chunk := source.read(CHUNK if limit is None else min(CHUNK, limit - read))):
                    read += len(chunk)
                    hasher.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            destination.unlink(missing_ok=True)
            raise MissingObject(f"object {sha} is missing", sha) from None
        except UnusableFile as err:
            destination.unlink(missing_ok=True)
            raise VerificationError(f"object {sha} {err.reason}", sha) from None
        if hasher.hexdigest() != sha or (size is not None and read != size):
            destination.unlink(missing_ok=True)
            raise VerificationError(f"object {sha} does not have its SHA-256", sha)

    def fetch_all(self, wanted: list[tuple[str, Path, int]]) -> None:
        """``fetch`` of every (SHA-256, destination, size its manifest gives); the first failure is
        raised. From a store that is no local folder, objects of together at most ``AT_ONCE`` bytes
        are read at once (fsspec's ``cat_ranges``: s3fs sends the GETs together, each for at most
        size + 1 bytes, instead of a HEAD then a GET per object one after another), each checked as
        ``fetch`` checks it; the others, and an object that could not be read so, are fetched alone."""
        together, total = [], 0
        for sha, destination, size in [] if self.is_folder else sorted(wanted, key=lambda each: each[2]):
            if 0 < size and total + size <= AT_ONCE:  # an empty object is fetched alone: S3 refuses a range of it
                together.append((sha, destination, size))
                total += size
        read = {}
        if len(together) > 1:
            paths = [self.object_path(sha) for sha, _, _ in together]
            contents = self.fs.cat_ranges(paths, [0] * len(paths), [size + 1 for _, _, size in together], on_error="return")
            read = {
                destination: content for (_, destination, _), content in zip(together, contents, strict=True) if isinstance(content, bytes)
            }
        for sha, destination, size in wanted:
            if destination not in read:
                self.fetch(sha, destination, size)
                continue
            if len(read[destination]) != size or hashlib.sha256(read[destination]).hexdigest() != sha:
                raise VerificationError(f"object {sha} does not have its SHA-256", sha)
            with open(destination, "wb") as out:
                out.write(read[destination])

    def touch(self, key: str) -> None:
        """Mark an entry as just used (its manifest's modification time: least recently used goes first)."""
        self.refresh(self.manifest_path(key))

    def refresh(self, path: str) -> None:
        """Set a file's modification time to now, in a folder (an object store's cannot be set)."""
        if self.is_folder:
            try:
                os.utime(path)
            except OSError:
                pass

    # --- listing and removing (nbsweep.cache.upkeep) ---

    def contents(self, folders: tuple[str, ...] = ("entries", "objects")) -> tuple[list, list, list]:
        """What ``manifests``, ``objects`` and ``leftovers`` yield, as lists, each folder listed once
        (NotADirectoryError for a folder store that is a file: no empty cache)."""
        if self.is_folder and os.path.exists(self.root) and not os.path.isdir(self.root):
            raise NotADirectoryError(errno.ENOTDIR, "a file, not a folder", self.root)
        manifests, objects, leftovers = [], [], []
        for folder in folders:
            for path, info in self._files(folder):
                name, size, mtime = path.rsplit("/", 1)[-1], info["size"], modified(info)
                if TEMPORARY in name:
                    leftovers.append((path, size, mtime))
                elif folder == "objects":
                    objects.append((name, size, mtime))
                elif name.endswith(".json"):
                    manifests.append((name.removesuffix(".json"), size, mtime))
        return manifests, objects, leftovers

    def exists(self) -> bool:
        """Whether anything is at the store's URL (a folder, or objects under an S3 prefix)."""
        return self.fs.exists(self.root)

    def manifests(self) -> Iterator[tuple[str, int, float]]:
        """(key, size, modification time) of every entry."""
        return iter(self.contents(("entries",))[0])

    def objects(self) -> Iterator[tuple[str, int, float]]:
        """(SHA-256, size, modification time) of every object."""
        return iter(self.contents(("objects",))[1])

    def leftovers(self) -> Iterator[tuple[str, int, float]]:
        """(path, size, modification time) of the temporary files of writers killed or still writing."""
        return iter(self.contents()[2])

    def _files(self, folder: str):
        try:
            found = self.fs.find(f"{self.root}/{folder}", detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            if info.get("type") != "directory":
                yield path, info

    def remove_entry(self, key: str) -> None:
        self.remove_path(self.manifest_path(key))

    def remove_object(self, sha: str) -> None:
        self.remove_path(self.object_path(sha))

    def remove_path(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass


def modified(info: dict) -> float:
    """A listed file's modification time as a POSIX timestamp (local ``mtime``, S3 ``LastModified``, memory ``created``)."""
    value = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
