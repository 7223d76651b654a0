"""Adapters: everything that touches the outside world (stores, providers, channels)."""
