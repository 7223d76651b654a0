"""The Redis adapters: inventory and orders, one FUNCTION library each."""
