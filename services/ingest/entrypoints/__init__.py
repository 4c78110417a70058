"""Ingest's entrypoints: the HTTP app (http.py) and the start-up republish of declarations (republish.py)."""
