"""Known secret values masked in text nbsweep copies from a run (errors, metrics, console lines).

A run's ``secrets`` name environment variables; their values must not leave the run's kernel. A
notebook may still print one (an exception message quoting a token): wherever nbsweep writes text
it did not compute itself, every value of a secret variable is replaced by ``***``.
"""

import os
from collections.abc import Iterable

MASK = "***"
MIN_LENGTH = 3  # shorter values ("1", "ab") would mask unrelated text and reveal little


def secret_values(variables: Iterable[str], environ=None) -> list[str]:
    """The values of the named environment variables worth masking, longest first."""
    environ = os.environ if environ is None else environ
    values = {environ[name] for name in variables if len(environ.get(name, "")) >= MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def mask(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of each value replaced by ``***``."""
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_data(data, values: list[str]):
    """``mask`` applied to every string in JSON-like data (dicts, lists, strings)."""
    if not values:
        return data
    if isinstance(data, str):
        return mask(data, values)
    if isinstance(data, dict):
        return {mask_data(key, values): mask_data(value, values) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(value, values) for value in data]
    return data
