"""What every command shares: argument types that name bad values, quiet local Prefect, one line per expected error."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

VLLM_URL = os.environ.get("POLYGLOT_VLLM_URL", "http://127.0.0.1:8000")


def _number(text: str, kind: type, low: float, high: float | None = None) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if value != value or value < low or (high is not None and value > high):  # value != value: NaN
        bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
        raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, 1)


def count(text: str) -> int:
    return _number(text, int, 0)


def seconds(text: str) -> float:
    return _number(text, float, 0.0)


def positive_seconds(text: str) -> float:
    return _number(text, float, 0.001)


def share(text: str) -> float:
    return _number(text, float, 0.0, 1.0)


def bt_rate(text: str) -> float | None:
    """A back-translation rate: a share of turns, or 'auto' (None: every turn unless the translator is known good)."""
    return None if text.strip().lower() == "auto" else _number(text, float, 0.0, 1.0)


def budget(text: str) -> int | None:
    """A review budget: a count, or 'all' (None: every conversation, for an evaluation set)."""
    return None if text.strip().lower() == "all" else _number(text, int, 0)


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _raised_by_the_project(exc: BaseException) -> bool:
    """An error this project raised on purpose, with a message for the user: one of its own error types, or a
    ValueError / FileNotFoundError / RuntimeError raised in its own code (not inside a library)."""
    from annotation.client import ReviewServerUnavailable
    from pipeline.translate.backends import BackendUnavailable

    if isinstance(exc, (BackendUnavailable, ReviewServerUnavailable)):
        return True
    if not isinstance(exc, (ValueError, FileNotFoundError, RuntimeError)) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    return where.is_relative_to(PROJECT_ROOT) and not {".venv", "site-packages"} & set(where.parts)


_EXPECTED_FAILURES: set[str] = set()  # ids of the flow and task runs that failed with an expected error


def _run_id(record: logging.LogRecord) -> str | None:
    return str(getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None) or "") or None


class _NoTracebackForExpectedErrors(logging.Filter):
    """Prefect logs a failed flow or task run with its traceback. For an error the command then reports in one
    line (a server down, a value refused), the traceback only buries that line; bugs keep theirs. The run is
    remembered, and the record goes on to Prefect's API (the run's log keeps the one-line error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and _raised_by_the_project(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
            if run := _run_id(record):
                _EXPECTED_FAILURES.add(run)
        return True


class _LeaveExpectedErrorsToTheCommand(logging.Filter):
    """On the terminal an expected error is said once, by the command: Prefect's error records of a run that failed
    with it (the exception, then 'Finished in state Failed') are left out there."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and _run_id(record) in _EXPECTED_FAILURES)


def prefect_defaults() -> None:
    """Quiet, local, private Prefect unless the user configured otherwise (a server via PREFECT_API_URL)."""
    from pipeline.processes import home

    os.environ.setdefault("PREFECT_HOME", str(home() / "prefect"))
    # Prefect makes only the last directory of its home; without the parents its server never starts
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # progress lines reach the run's log (INFO) while the terminal shows Prefect's warnings and errors only: the
    # commands print their own lines
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForExpectedErrors())
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()  # now, so that its console handlers exist (later calls only update levels)
    for handler in {*logging.getLogger("prefect").handlers, *logging.getLogger().handlers}:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_LeaveExpectedErrorsToTheCommand())


def embed_options(p: argparse.ArgumentParser) -> None:
    """The embedding judge's options (translate, qe score, qe calibrate)."""
    p.add_argument(
        "--embed-server",
        default=os.environ.get("POLYGLOT_EMBED_URL"),
        help="embedding judge: an OpenAI-compatible /v1/embeddings server (polyglot services up vllm --embedding "
        "--model …); the cosine of each translation with its source, scored where the calibration was fitted with "
        "that model",
    )
    p.add_argument("--embed-model", default=None, help="model the embedding server serves (default: its base model)")
    p.add_argument(
        "--embed-prefix",
        default=None,
        help="text put before every sentence embedded (default: the model's own for sentence similarity, e.g. "
        "EmbeddingGemma's 'task: sentence similarity | query: ')",
    )
