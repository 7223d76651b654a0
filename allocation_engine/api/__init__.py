"""The edges: gRPC servicers, one converter per .proto, one error interceptor."""
