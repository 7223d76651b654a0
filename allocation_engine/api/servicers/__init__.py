"""One servicer per gRPC service: decode, call a use case, encode."""
