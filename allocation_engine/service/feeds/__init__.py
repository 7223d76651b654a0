"""Feeds from the systems around the engine: ERP inventory files (`erp.py`), read through one
careful CSV reader (`table.py`) that names every bad value by its line and column."""
