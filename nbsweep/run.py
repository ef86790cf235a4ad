"""Entry point of a run's job: ``python -m nbsweep.run JOB_FILE TARGET LOG``.

Kept lean: the warm runner (``nbsweep.warm``, started by the first job that finds none) executes
the run; when it is disabled or cannot start, the run executes in this process
(``nbsweep.execute``).
"""

import sys

from . import warm


def main(argv: list[str] | None = None) -> int:
    argv = argv or sys.argv[1:]
    code = warm.run_via_server(argv)
    if code is None:
        from .execute import parent_gone, run_job

        code = run_job(argv, gone=parent_gone(), how="in-process")
    return code


if __name__ == "__main__":
    sys.exit(main())
