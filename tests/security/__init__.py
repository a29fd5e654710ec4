"""Security tests: the object-level authorisation matrix over the whole route table, token and
id-swapping attacks across organisations, and audit coverage of every route that reads client data."""
