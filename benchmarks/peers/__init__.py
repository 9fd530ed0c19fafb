"""Helpers for benchmarks/ode_vs_peers.py: the reference problem and one runner per peer."""
