"""The sync engine: mapping, planning and applying changes."""
