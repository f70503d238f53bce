"""Progress lines of the flows: into the run's log — the Prefect UI shows them, whoever started the run (a
deployment, a worker, the command line) — and, when a command runs the flow for a person, on stderr as well."""

from __future__ import annotations

import sys

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def tell(message: str, terminal: bool = True, error: bool = False) -> None:
    """``message`` into the current flow or task run's log (at level ERROR with ``error``); on stderr too with
    ``terminal``."""
    try:
        logger = get_run_logger()
        (logger.error if error else logger.info)(message)
    except MissingContextError:  # called outside a run (a test calling the code directly): the terminal only
        terminal = True
    if terminal:
        print(message, file=sys.stderr, flush=True)
