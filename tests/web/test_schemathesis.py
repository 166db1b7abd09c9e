"""Property-based API tests: schemathesis generates requests from the OpenAPI schema and no
answer may be a server error (5xx), whatever the input. Authenticated (an admin's bearer token,
so that every route is reachable), on a lane with an open shift and a sale with lines, with a
bounded number of examples per operation (seconds, not minutes).

Left out: ``GET /api/events`` (an endless stream) and ``DELETE /api/session`` (it would sign the
token out for every later example).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from shouyin.web.app import create_app
from tests.web import ADMIN, make_runtime

EXCLUDED = {("GET", "/api/events"), ("DELETE", "/api/session")}


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory, lane_template: Path) -> Any:
    """An app with a signed-in admin, an open shift and a sale; yields (schema, token)."""
    path: Path = tmp_path_factory.mktemp("schemathesis") / "lane.db"
    shutil.copyfile(lane_template, path)
    runtime = make_runtime(f"sqlite:///{path}")
    app = create_app(runtime)
    with TestClient(app) as client:
        token = client.post(
            "/api/session", json={"username": ADMIN[0], "password": ADMIN[1]}
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        client.post("/api/shift", json={"opening_float_fen": 10_000}, headers=bearer)
        sale = client.post("/api/sales", headers=bearer).json()
        client.post(
            f"/api/sales/{sale['sale_id']}/scan", json={"code": "6901234567892"}, headers=bearer
        )
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
        yield schema, bearer


def check_operation(operation: Any, bearer: dict[str, str]) -> int:
    """Run bounded generated examples of one operation; return how many ran."""
    ran = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def examples(case: Any) -> None:
        nonlocal ran
        ran += 1
        response = case.call(headers=bearer)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
        content_type = str(response.headers.get("content-type", ""))
        if response.status_code >= 400 and "application/json" in content_type:
            body = response.json()
            assert {"error", "message", "message_en"} <= set(body), body

    examples()
    return ran


def test_no_input_makes_a_server_error(lane: Any) -> None:
    schema, bearer = lane
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in EXCLUDED:
            continue
        check_operation(operation, bearer)
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 20, checked  # the cashier API alone has more than 20 operations
