"""llava-polyglot core: pure, testable pipeline code (no Prefect, no Label Studio)."""

__version__ = "0.1.0"
