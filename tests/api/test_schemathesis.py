"""schemathesis against our OpenAPI schema with two users: no 5xx, no cross-user access.

Every documented operation gets generated requests as user A. Besides "never a
5xx", each response must not contain any id of user B's objects, and every
operation that takes an object id is also called with B's run and conversation
ids, which must answer 404.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token

from runtime.events import append_events
from runtime.services import run_create
from tests.api.conftest import say

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_users(owner, stranger):
    theirs, _ = run_create(agent_key="echo", messages=say("private"), user=stranger)
    append_events(str(theirs.pk), [("assistant.message", {"content": "secret"})], attempt=1, lease_token=None)
    return {
        "mine": Token.objects.create(user=owner).key,
        "their_ids": {str(theirs.pk), str(theirs.conversation_id)},
        "their_run": str(theirs.pk),
        "their_conversation": str(theirs.conversation_id),
    }


def check(case, two_users) -> None:
    headers = {"Authorization": f"Token {two_users['mine']}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    for other_id in two_users["their_ids"]:
        assert other_id not in response.text, (case.method, case.formatted_path)

    params = dict(case.path_parameters or {})
    key = next((name for name in ("id", "run_id") if name in params), None)
    if key is None:
        return
    target = two_users["their_conversation"] if "/conversations/" in case.path else two_users["their_run"]
    case.path_parameters = {**params, key: target}
    probe = case.call(headers=headers)
    assert probe.status_code == 404, (case.method, case.formatted_path, probe.status_code, probe.text[:300])


def test_no_server_errors_and_no_cross_user_access(two_users):
    # schemathesis' pytest plugin does not load under pytest 9, so drive its strategies directly
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case) -> None:
            check(case, two_users)

        run()
