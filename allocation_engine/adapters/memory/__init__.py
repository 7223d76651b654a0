"""In-memory adapters: the embedded default, one side of every shared store suite."""
