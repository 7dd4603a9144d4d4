"""The base view sets in a host project built as the original's setup guide shows (issue 10,
item 15): they follow the host's REST_FRAMEWORK authentication and permission defaults, and an
``Authorization: Token`` header without ``rest_framework.authtoken`` installed is a 401."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.api.live import ROOT, database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_host_projects_defaults_rule_and_tokens_without_authtoken_are_401():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.api.host_project.settings",
        "HOST_DATABASE_URL": database_url(connection.settings_dict),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.api.host_project.probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    # the host's own authentication class is used, and its permission (IsAdminUser) decides
    assert answers["host_auth_staff"][0] == 201, answers
    assert answers["host_auth_member"][0] == 403, answers
    # no authtoken app: a token header is refused with a message, never a server error
    assert answers["token_header"][0] == 401, answers
    assert "rest_framework.authtoken is not installed" in answers["token_header"][1]
    assert answers["stream_token_header"] == 401, answers
