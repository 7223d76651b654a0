"""Protobuf <-> domain, one module per .proto file of allocation.v1."""
