"""The thin web client: static files served at /ui, using only the public API."""
