"""Prefect flows: thin, coarse wrappers around pipeline/, language_rules/ and annotation/."""
