"""`allocation-engine`: the command line, one module per command group."""
