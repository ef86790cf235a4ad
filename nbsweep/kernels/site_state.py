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


# Run by the kernel's interpreter in the run's directory and environment: which of the modules
# given (JSON on argv) it finds installed, without importing any (only a top-level name is looked up).
INSTALLED_QUERY = """
import importlib.util, json, os, site, sys, sysconfig
roots = [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")] + site.getsitepackages()
roots = [os.path.realpath(root) for root in roots + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
def installed(name):
    try:
        spec = importlib.util.find_spec(name.partition(".")[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or []) or [spec.origin]
    return all(place in ("built-in", "frozen") or any(os.path.realpath(place).startswith(root + os.sep) for root in roots) for place in places)
print(json.dumps([name for name in json.loads(sys.argv[1]) if installed(name)]))
"""


def installed_modules(python: str, modules: tuple[str, ...], cwd: str, env: dict) -> tuple[str, ...]:
    """Those of ``modules`` that interpreter ``python``, run in ``cwd`` with ``env``, finds installed:
    in its standard library or site directories (whose changes ``signature`` notices), not the
    project's own modules or a source tree on its path (which may be edited between runs). None
    is imported here (a dotted name counts by its top-level package); () if it cannot tell."""
    if not modules:
        return ()
    try:
        out = subprocess.run(
            [python, "-c", INSTALLED_QUERY, json.dumps(list(modules))],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        found = set(json.loads(out))
    except (OSError, subprocess.SubprocessError, ValueError, TypeError):
        return ()
    return tuple(name for name in modules if name in found)


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
