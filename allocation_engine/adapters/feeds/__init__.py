"""Feed transports: the drop folder other systems write files into."""
