"""Ingest's adapters, one module each: producer, produced_lookup, dedupe_store, declarations, tables."""
