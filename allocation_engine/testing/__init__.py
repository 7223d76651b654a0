"""Helpers for tests and benchmarks that start real throwaway servers (redis-server)."""
