"""The ``idsync`` command line: one module per noun, all calling ``idsync.services``."""
