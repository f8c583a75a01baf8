"""The use cases every front end calls: CLI, API and portal alike.

Front ends never reach below this package: no SQL in a command, no LDAP in
a route. Each function takes plain values and returns plain values or
dataclasses, raising :class:`idsync.errors.IdsyncError` subclasses.
"""
