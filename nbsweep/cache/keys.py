"""The key of a cache entry, and the digest of a kernel's environment.

In the local cache a run's key is its planned fingerprint (``Provenance.fingerprint``): what decides
staleness decides reuse. A shared cache is read by other machines, whose kernels may have other
packages: there the key also covers the kernel's environment (``environment``), so a teammate with
another pandas computes the run anew instead of getting this machine's notebook.
"""

import json
import os
import shutil
import subprocess
from functools import cache

from nbsweep.canonical import digest
from nbsweep.kernels.kernelspec import interpreter, spec_of

# Run by a Python kernel's interpreter: its version and its installed distributions (name and version).
ENVIRONMENT_QUERY = (
    "import json, sys, importlib.metadata as m\n"
    "print(json.dumps([sys.version, sorted({f\"{(d.metadata['Name'] or '').lower()}=={d.version}\" for d in m.distributions()})]))"
)


def entry_key(fingerprint: str, environment: str | None) -> str:
    """The key of a run's entry: its fingerprint, with the kernel environment's digest in a shared cache."""
    return fingerprint if environment is None else digest([fingerprint, environment])


@cache
def environment(kernel: str) -> str:
    """The digest of what kernel ``kernel`` runs in: for a Python kernel, its interpreter's version
    and installed distributions (names and versions, as ``pip list`` shows them); for another
    language, its kernelspec and its executable (path, size, modification time). Computed once
    per process (one start of the interpreter); a kernel that cannot be asked gets a digest of its name
    alone with a random part, so nothing is shared for it."""
    try:
        spec = spec_of(kernel)
    except Exception:  # noqa: BLE001 -- jupyter_client's NoSuchKernel and unreadable specs: the run fails by itself
        return digest([kernel, os.urandom(16).hex()])
    python = interpreter(spec)
    if python is not None:
        try:
            out = subprocess.run(
                [python, "-c", ENVIRONMENT_QUERY],
                env={**os.environ, **spec.get("env", {})},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            return digest(["python", json.loads(out)])
        except (OSError, subprocess.SubprocessError, ValueError):
            return digest([kernel, os.urandom(16).hex()])
    argv = spec.get("argv") or [""]
    executable = shutil.which(argv[0]) or argv[0]
    try:
        status = os.stat(executable)
        identity = [os.path.realpath(executable), status.st_size, status.st_mtime_ns]
    except OSError:
        identity = [executable]
    spec = {key: value for key, value in spec.items() if key != "resource_dir"}
    return digest([spec, identity])
