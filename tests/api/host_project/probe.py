"""Requests against the host project; prints one JSON object of what each answered."""

import json

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

User = get_user_model()
User.objects.create_user("host-admin", is_staff=True)
User.objects.create_user("host-member")
run = {"agent_key": "echo", "messages": [{"role": "user", "content": "hi"}]}
client = Client()


def post(prefix="/api/agents", **headers):
    response = client.post(f"{prefix}/runs/", run, content_type="application/json", headers=headers)
    return response.status_code, response.content.decode()[:300]


print(
    json.dumps(
        {
            "host_auth_staff": post(**{"X-Host-User": "host-admin"}),
            "host_auth_member": post(**{"X-Host-User": "host-member"}),
            "token_header": post("/api/ours", Authorization="Token 0123456789abcdef"),
            "stream_token_header": client.get(
                "/api/agents/runs/6f1c0000-0000-4000-8000-000000000000/events/",
                headers={"Authorization": "Token abc"},
            ).status_code,
        }
    )
)
