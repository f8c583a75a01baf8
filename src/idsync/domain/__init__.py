"""Pure data of idsync: definitions, entries, records, changes, plans and results."""
