"""The scoring read API fuzzed from its own OpenAPI document (schemathesis): no server errors, every
response matches the documented status codes and schemas, bad input is refused with 4xx."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fixtures.scoring import ScoringApi

READ_PATHS = {"/v1/accounts", "/v1/accounts/{account_id}", "/v1/accounts/{account_id}/score-history"}


def test_the_read_api_is_in_the_openapi_document(scoring_api: ScoringApi) -> None:
    document = httpx.get(f"{scoring_api.base_url}/openapi.json", timeout=10).json()
    assert READ_PATHS <= set(document["paths"])
    parameters = {p["name"] for p in document["paths"]["/v1/accounts"]["get"]["parameters"]}
    assert {"tier", "owner", "order", "limit", "offset"} <= parameters


def test_the_read_api_survives_fuzzing(scoring_api: ScoringApi) -> None:
    schema = schemathesis.openapi.from_url(f"{scoring_api.base_url}/openapi.json")
    fuzzed = []
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in READ_PATHS:
            continue
        fuzzed.append(operation.path)

        strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        if "{account_id}" in operation.path:
            strategies.append(operation.as_strategy(path_parameters={"account_id": "acme"}))

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=scoring_api.base_url, headers=scoring_api.headers)
            statuses.setdefault(case.operation.path, set()).add(response.status_code)

        check()
    assert set(fuzzed) == READ_PATHS
    # the generated cases reached real answers as well as refusals, on every path
    assert statuses["/v1/accounts"] >= {200, 422}, statuses
    assert all({200, 404} <= codes for path, codes in statuses.items() if "{account_id}" in path), statuses
