"""schemathesis against the portal's OpenAPI document: every operation of the JSON API,
with generated valid and invalid inputs, answers without a server error."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from osp_ops.engine.context import Context
from osp_ops.web.app import create_app
from tests.fixtures.portal import Inbox, portal_settings

pytestmark = pytest.mark.integration

CASES = int(os.environ.get("OSP_OPS_TEST_FUZZ", "500")) // 15  # per operation


@pytest.fixture
def api_schema(ctx: Context, smtp: tuple[Inbox, int]) -> schemathesis.BaseSchema:
    big = {
        "requests_per_ip_per_hour": 10**6,
        "requests_per_email_per_hour": 10**6,
        "posts_per_ip_per_hour": 10**6,
        "logins_per_15_minutes": 10**6,
    }
    app = create_app(lambda: ctx, settings=portal_settings(smtp[1], **big))
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_no_server_error(api_schema: schemathesis.BaseSchema) -> None:
    # Operation by operation (schemathesis' pytest plugin does not run under this pytest).
    names = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        names.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()
    assert len(names) >= 7, names
