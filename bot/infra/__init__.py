"""Plumbing every package uses: database, settings, logs, metrics, errors, the clock, escaping."""
