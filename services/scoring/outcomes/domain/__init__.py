"""Outcomes' pure logic: opportunity stages, report periods, the revenue ledger and metrics, the weekly summary."""
