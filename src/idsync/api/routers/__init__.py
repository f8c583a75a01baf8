"""One router module per noun of the API."""
