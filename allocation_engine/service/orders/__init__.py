"""Use cases of the order workflow over the order ports."""
