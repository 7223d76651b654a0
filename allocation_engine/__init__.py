"""Order allocation engine: optimal order sourcing and split shipments, served over gRPC."""

__version__ = "0.1.0"
