"""Metrics. ``exact``: measures that need the data law exactly (oracle domains)."""
