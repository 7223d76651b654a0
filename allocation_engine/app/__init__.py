"""Configuration and wiring: the only place that picks adapters (serve, outbox, demo)."""
