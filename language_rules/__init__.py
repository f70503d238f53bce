"""Per-language fixers: data tables plus small pure functions that report every change."""
