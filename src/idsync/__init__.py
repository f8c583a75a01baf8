"""idsync: keep directories in step with the systems that own identity data."""

__version__ = "0.1.0"
