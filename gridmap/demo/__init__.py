"""Demo data generators; nothing outside this package imports it."""
