"""The state of the site directories where Python finds installed packages.

Python reads ``.pth`` files (editable installs, path additions) only when it starts, and a
process keeps the modules it has imported. So a process started before an install does not
see it, where a process started after does: the warm server and kernels started ahead are
compared against ``signature`` of the site directories they were started with.
"""

import json
import os
import site
import subprocess
import sys


def site_dirs() -> list[str]:
    """This interpreter's site directories (those whose ``.pth`` files are read at startup)."""
    dirs = site.getsitepackages()
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return dirs


QUERY = "import json, site; print(json.dumps(site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])))"


def interpreter_site_dirs(python: str, env: dict) -> list[str]:
    """The site directories of interpreter ``python`` run in ``env`` ([] if it cannot tell)."""
    if python == sys.executable:
        return site_dirs()
    try:
        out = subprocess.run([python, "-c", QUERY], env=env, capture_output=True, text=True, timeout=30, check=True).stdout
        return [str(d) for d in json.loads(out)]
    except (OSError, subprocess.SubprocessError, ValueError, TypeError):
        return []


def signature(dirs: list[str]) -> list:
    """Each directory's modification time (installs and removals) and its ``.pth`` files' (edits)."""
    result = []
    for folder in dirs:
        try:
            with os.scandir(folder) as entries:
                pth = sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.name.endswith(".pth"))
            result.append([folder, os.stat(folder).st_mtime_ns, pth])
        except OSError:
            result.append([folder, None, []])
    return result
