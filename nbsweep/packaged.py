"""Where the workflow nbsweep ships lives: its Snakefile, rules, schema, report and profiles.

Everything is package data, found relative to this file, so a project uses the same workflow
whether nbsweep was installed from a wheel, from a checkout, or editable.
"""

from pathlib import Path

from nbsweep import snakefile

SNAKEFILE = Path(snakefile())
WORKFLOW = SNAKEFILE.parent
SCHEMA = WORKFLOW / "schemas" / "config.schema.yaml"
PROFILES = WORKFLOW / "profiles"
