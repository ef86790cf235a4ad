"""Snakemake logger plugin ``nbsweep`` (``--logger nbsweep``; on in nbsweep's workflow profile).

Snakemake finds logger plugins as top-level packages named ``snakemake_logger_plugin_*``; the
console itself is ``nbsweep.smk.console``.
"""

from nbsweep.smk.console import LogHandler, LogHandlerSettings

__all__ = ["LogHandler", "LogHandlerSettings"]
