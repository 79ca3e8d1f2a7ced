"""Glue between a Snakemake `script:` and the library: logging, threads, one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from .config import with_speed_keys
from .errors import VicokdError
from .storage import WRITE_ERRNOS

log = logging.getLogger("vicokd")


def setup_logging(logfile: str | None = None, level=logging.INFO) -> None:
    """Log to stderr and, when given, to the rule's log file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def set_threads(n: int) -> None:
    """Use exactly the threads Snakemake gave the job, so parallel jobs do not fight.

    Sets the OpenMP/MKL variables for libraries not yet imported, and torch's pool when torch
    is already loaded (importing torch only for this would cost seconds in light jobs)."""
    n = str(max(1, int(n)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def job_sections(snakemake, *names: str) -> list[dict]:
    """The config sections `names` as a job runs with them: its params (the keys that change
    results, workflow/rules/common.smk) plus the speed keys of the whole config (threads,
    workers, caches, device placement), which are never params so that changing one reruns
    nothing."""
    return [with_speed_keys(name, dict(getattr(snakemake.params, name)), snakemake.config.get(name, {}))
            for name in names]


def optional_input(inputs, name: str) -> str | None:
    """A named input of a rule that declares it only for some jobs (e.g. masks.h5), or None."""
    return getattr(inputs, name) if name in inputs.keys() else None


def run_script(snakemake, main: Callable[..., None]) -> None:
    """Run `main(snakemake)` with logging and threads set up; a VicokdError, or a write that
    failed for a full disk or a read-only folder, exits with one line."""
    try:
        logfile = snakemake.log[0] if len(snakemake.log) else None
        setup_logging(logfile)
        set_threads(snakemake.threads)
        main(snakemake)
    except VicokdError as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = exc.filename or "a file of this job"
        fail(f"{where}: cannot be written: {WRITE_ERRNOS[exc.errno]}")


def fail(message: str) -> None:
    """Log `message`, print it as the job's one line on stderr, and exit with status 2."""
    log.error("%s", message)
    print(f"vicokd: error: {message}", file=sys.stderr)
    sys.exit(2)
