"""Geocoding adapters: coordinates for ship-tos that come without any."""
