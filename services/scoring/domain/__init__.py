"""Scoring's pure logic, one job a module; every band, weight and threshold comes from `config.ScoringConfig`."""
