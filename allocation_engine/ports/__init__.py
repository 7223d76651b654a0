"""What the service layer needs from the outside world: Protocols and their records."""
