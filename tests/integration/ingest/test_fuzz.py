"""schemathesis against each HTTP service's own OpenAPI document: no 5xx, no undocumented status, no answer that
breaks the schema. Bounded: a fixed seed and a fixed number of examples per operation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"
EXAMPLES = 25


def fuzz(base_url: str, key: str, cwd: Path, *extra: str) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261110",
            "--generation-database",
            "none",
            "--no-color",
            *extra,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_ingest_survives_its_own_schema(stack_factory, database_url, service_factory, api_key_factory, tmp_path) -> None:
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("ingest", stack)
    fuzz(stack.url("ingest"), key, tmp_path)


def test_scoring_read_api_survives_its_own_schema(stack_factory, database_url, service_factory, api_key_factory, tmp_path) -> None:
    """Every route of the scoring service: accounts, score history, revenue and signal metrics, opportunities."""
    stack = stack_factory(database_url)
    key = api_key_factory(database_url)
    service_factory("scoring", stack)
    fuzz(stack.url("scoring"), key, tmp_path)
