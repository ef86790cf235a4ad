"""Kernelspecs as a kernel started now would use them, the kernel for a language, and what a
kernel started ahead was made from."""

import os
import sys

from nbsweep.kernels import site_state

# A language's own kernel, chosen among several installed for it: ipykernel's name, which
# `ipykernel install` and Jupyter use by default.
NATIVE_KERNELS = {"python": "python3"}


def kernels_for_language(language: str, languages: dict[str, str]) -> list[str]:
    """The kernels that could run a template in ``language`` that names none (``languages``: each
    installed kernelspec's name -> its language): those whose language it is (in any case), or,
    among several, the language's own kernel (``NATIVE_KERNELS``) alone. The one to use is the
    only one listed; none or several is for the user to settle."""
    matching = sorted(name for name, spoken in languages.items() if (spoken or "").lower() == language.lower())
    native = NATIVE_KERNELS.get(language.lower())
    return [native] if native in matching else matching


def spec_of(name: str) -> dict:
    """Kernelspec ``name`` as a kernel started now would use it: its folder and ``kernel.json`` content."""
    from jupyter_client.kernelspec import KernelSpecManager

    return described(KernelSpecManager().get_kernel_spec(name))


def described(spec) -> dict:
    return {"resource_dir": spec.resource_dir, **spec.to_dict()}


def interpreter(spec: dict) -> str | None:
    """The Python a kernelspec runs, read as jupyter_client does (``python``/``python3`` mean this one)."""
    argv0 = spec["argv"][0] if spec["argv"] else ""
    if spec["language"].lower() != "python" or not os.path.basename(argv0).startswith("python"):
        return None
    version = sys.version_info
    return sys.executable if argv0 in {"python", f"python{version[0]}", f"python{version[0]}.{version[1]}"} else argv0


def made_from_now(spec: dict, env) -> tuple:
    """What a kernel of ``spec`` started now in ``env`` is made from: the kernelspec, its interpreter's
    site directories and their signature (``made_from_current`` compares it later)."""
    python = interpreter(spec)
    dirs = site_state.interpreter_site_dirs(python, {**env, **spec["env"]}) if python else []
    return spec, dirs, site_state.signature(dirs)


def made_from_current(name: str, made_from: tuple | None) -> bool:
    """Whether kernel ``name`` started now would be made from ``made_from`` (kernelspec, site dirs, their signature)."""
    if made_from is None:
        return False
    spec, dirs, signature = made_from
    try:
        return spec_of(name) == spec and site_state.signature(dirs) == signature
    except (KeyError, OSError, ValueError):  # the kernelspec has gone (NoSuchKernel) or is unreadable: a new start says why
        return False
