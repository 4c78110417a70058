"""Ingest's pure logic: request bodies, native events, Segment and CloudEvents translation, claims, its config."""
