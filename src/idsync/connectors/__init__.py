"""Adapters to the outside world: identity stores (directories) and data sources."""
