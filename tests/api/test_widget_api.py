"""The web widget's channel and visitor API (/api/widget/): who may mint, what a visitor may do."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AnonymousSession
from builder.services import agent_create, agent_publish
from runtime.channels.models import WidgetChannel, WidgetFeedback
from runtime.channels.origins import normalise_origin, origin_allowed, parse_origins
from runtime.channels.services import (
    ChannelError,
    widget_channel_create,
    widget_channel_rotate_key,
    widget_channel_set_enabled,
    widget_channel_update,
    widget_settings_clean,
)
from runtime.models import AgentConversation, AgentRun, RunStatus

pytestmark = pytest.mark.django_db
SITE = "https://shop.example.com"
W = "/api/widget"


@pytest.fixture
def channel(published, owner) -> WidgetChannel:
    return widget_channel_create(agent_key="support", user=owner, allowed_origins=[SITE])


def mint(channel_or_key, origin: str = SITE):
    key = channel_or_key if isinstance(channel_or_key, str) else channel_or_key.publishable_key
    return APIClient().post(f"{W}/session/", {"key": key}, format="json", HTTP_ORIGIN=origin)


def visitor(token: str, origin: str = SITE) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=token, HTTP_ORIGIN=origin)
    return client


# -- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("https://Shop.Example.com", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://*.example.com", "https://*.example.com"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(raw, normal):
    assert normalise_origin(raw) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://shop.example.com/path",
        "https://shop.example.com?x=1",
        "https://user@shop.example.com",
        "https://*",
        "https://shop.*.com",
        "https://*com",
        "https://exa mple.com",
        "javascript:alert(1)",
    ],
)
def test_paths_other_wildcards_and_other_schemes_are_refused_with_a_reason(bad):
    origins, problems = parse_origins([bad])
    assert origins == [] and len(problems) == 1 and bad.split("?")[0][:8] in problems[0] or problems


def test_the_subdomain_wildcard_matches_subdomains_only():
    allowed = ["https://*.example.com"]
    assert origin_allowed("https://a.example.com", allowed)
    assert origin_allowed("https://a.b.example.com", allowed)
    assert not origin_allowed("https://example.com", allowed)
    assert not origin_allowed("http://a.example.com", allowed)
    assert not origin_allowed("https://evilexample.com", allowed)
    assert not origin_allowed("https://a.example.com:8443", allowed)


def test_settings_are_validated_field_by_field():
    cleaned, errors = widget_settings_clean(
        {
            "colour": "blue",
            "title": "",
            "allowed_origins": "https://ok.example.com\nhttps://bad.example.com/page",
            "suggested_questions": "a\nb\nc\nd\ne",
            "messages_per_visitor_per_day": "0",
            "position": "top",
        }
    )
    assert set(errors) == {
        "colour",
        "title",
        "allowed_origins",
        "suggested_questions",
        "messages_per_visitor_per_day",
        "position",
    }
    assert "#2563eb" in errors["colour"][0]
    assert "bad.example.com/page" in errors["allowed_origins"][0]
    cleaned, errors = widget_settings_clean({"colour": "#ABC", "messages_per_visitor_per_day": "7"})
    assert errors == {} and cleaned == {"colour": "#aabbcc", "messages_per_visitor_per_day": 7}


# -- who manages a channel ----------------------------------------------------------------------


def test_only_an_owner_creates_edits_disables_and_rotates(published, owner, other_staff, stranger):
    for user in (other_staff, stranger, None):
        with pytest.raises(ChannelError) as refused:
            widget_channel_create(agent_key="support", user=user)
        assert refused.value.status in (403, 404)
    channel = widget_channel_create(agent_key="support", user=owner, allowed_origins=[SITE])
    assert channel.publishable_key.startswith("pk_") and channel.created_by == owner
    for change in (
        lambda u: widget_channel_update(channel=channel, user=u, title="Mine now"),
        lambda u: widget_channel_set_enabled(channel=channel, user=u, enabled=False),
        lambda u: widget_channel_rotate_key(channel=channel, user=u),
    ):
        with pytest.raises(ChannelError):
            change(other_staff)
    channel.refresh_from_db()
    assert channel.title == "Chat with us" and channel.enabled


def test_an_unpublished_agent_gets_no_channel_and_nothing_is_written(owner):
    agent_create(owner=owner, slug="drafty", name="Drafty", config={"system_prompt": "x"})
    with pytest.raises(ChannelError) as refused:
        widget_channel_create(agent_key="drafty", user=owner)
    assert refused.value.code == "agent_unpublished"
    assert not WidgetChannel.objects.exists()


def test_bad_settings_write_nothing(published, owner):
    with pytest.raises(ChannelError) as refused:
        widget_channel_create(agent_key="support", user=owner, colour="red")
    assert refused.value.status == 422 and "colour" in refused.value.fields
    assert not WidgetChannel.objects.exists()


def test_a_code_agent_can_have_a_widget_managed_by_a_superuser(db):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-12345")
    channel = widget_channel_create(agent_key="echo", user=admin, allowed_origins=[SITE])
    assert mint(channel).status_code == 201


# -- minting visitor tokens -----------------------------------------------------------------------


def test_a_listed_origin_mints_a_short_lived_visitor_token(channel):
    response = mint(channel)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["config"]["title"] == "Chat with us" and "agent_key" not in body["config"]
    session = AnonymousSession.objects.get(token=body["token"])
    assert session.metadata == {"widget_channel": str(channel.pk), "origin": SITE}
    assert timedelta(minutes=55) < session.expires_at - timezone.now() <= timedelta(hours=1)
    assert response["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"key": "pk_nope"}, 404, "unknown_key"),
        ({"origin": "https://evil.example.net"}, 403, "origin_not_allowed"),
        ({"origin": ""}, 403, "origin_required"),
        ({"enabled": False}, 403, "channel_disabled"),
        ({"unpublish": True}, 403, "agent_unpublished"),
        ({"key": ""}, 400, "invalid"),
    ],
)
def test_refused_mints_say_why_and_create_nothing(channel, published, change, status, code):
    if change.get("enabled") is False:
        WidgetChannel.objects.filter(pk=channel.pk).update(enabled=False)
    if change.get("unpublish"):
        type(published).objects.filter(pk=published.pk).update(published_version=None)
    before = AnonymousSession.objects.count()
    origin = change.get("origin", SITE)
    response = mint(change.get("key", channel.publishable_key), origin=origin)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert AnonymousSession.objects.count() == before
    if origin:
        # the refusal is readable by the widget, so it can tell the visitor why
        assert response["Access-Control-Allow-Origin"] == origin


def test_the_servers_own_origin_may_mint_for_the_preview(channel):
    assert mint(channel, origin="http://testserver").status_code == 201


# -- tokens: refresh, expiry, forgery -------------------------------------------------------------


def test_refresh_extends_the_token_of_the_same_visitor(channel):
    first = mint(channel).json()
    AnonymousSession.objects.filter(token=first["token"]).update(
        expires_at=timezone.now() + timedelta(minutes=2)
    )
    refreshed = visitor(first["token"]).post(f"{W}/session/refresh/")
    assert refreshed.status_code == 200
    assert refreshed.json()["token"] == first["token"]
    session = AnonymousSession.objects.get(token=first["token"])
    assert session.expires_at - timezone.now() > timedelta(minutes=55)


def test_refresh_of_a_disabled_channel_says_so(channel):
    token = mint(channel).json()["token"]
    WidgetChannel.objects.filter(pk=channel.pk).update(enabled=False)
    refused = visitor(token).post(f"{W}/session/refresh/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "channel_disabled"


@pytest.mark.parametrize("which", ["expired", "forged", "plain anonymous session"])
def test_expired_forged_and_non_visitor_tokens_are_refused(channel, which):
    token = mint(channel).json()["token"]
    if which == "expired":
        AnonymousSession.objects.filter(token=token).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif which == "forged":
        token = token[:-4] + "AAAA"
    else:
        token = AnonymousSession.objects.create().token
    client = visitor(token)
    for response in (
        client.post(f"{W}/session/refresh/"),
        client.post(f"{W}/messages/", {"message": "hi"}, format="json"),
    ):
        assert response.status_code in (401, 403), response.content
        assert response.json()["error"]["code"] in ("authentication_failed", "not_a_visitor")
    assert not AgentRun.objects.exists()


def test_disabling_the_channel_ends_its_visitor_tokens(channel, owner):
    token = mint(channel).json()["token"]
    widget_channel_set_enabled(channel=channel, user=owner, enabled=False)
    response = visitor(token).post(f"{W}/messages/", {"message": "hi"}, format="json")
    assert response.status_code == 401


def test_a_rotated_key_no_longer_mints(channel, owner):
    old = channel.publishable_key
    widget_channel_rotate_key(channel=channel, user=owner)
    assert mint(old).status_code == 404
    assert mint(channel).status_code == 201


# -- chatting -------------------------------------------------------------------------------------


def test_a_message_starts_a_run_of_the_published_agent_for_this_visitor(channel):
    token = mint(channel).json()["token"]
    session = AnonymousSession.objects.get(token=token)
    response = visitor(token).post(f"{W}/messages/", {"message": "Where is my order?"}, format="json")
    assert response.status_code == 201, response.content
    run = AgentRun.objects.get(pk=response.json()["run_id"])
    assert run.agent_key == "support" and run.anonymous_session_id == session.pk and run.user is None
    assert run.metadata == {"channel": "widget", "widget_channel": str(channel.pk)}
    assert run.input["messages"] == [{"role": "user", "content": "Where is my order?"}]
    assert response["Access-Control-Allow-Origin"] == SITE


def test_a_message_from_another_origin_with_a_stolen_token_is_refused(channel):
    token = mint(channel).json()["token"]
    response = visitor(token, origin="https://evil.example.net").post(
        f"{W}/messages/", {"message": "hi"}, format="json"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert not AgentRun.objects.exists()


def test_oversized_and_empty_messages_are_refused(channel):
    client = visitor(mint(channel).json()["token"])
    too_long = client.post(f"{W}/messages/", {"message": "x" * 4001}, format="json")
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "message_too_long"
    empty = client.post(f"{W}/messages/", {"message": "   "}, format="json")
    assert empty.status_code == 400 and "message" in empty.json()["error"]["fields"]
    assert not AgentRun.objects.exists()


def test_the_daily_limit_per_visitor_is_a_429_with_retry_after(channel, owner):
    widget_channel_update(channel=channel, user=owner, messages_per_visitor_per_day=2)
    client = visitor(mint(channel).json()["token"])
    for n in range(2):
        assert client.post(f"{W}/messages/", {"message": f"q{n}"}, format="json").status_code == 201
    third = client.post(f"{W}/messages/", {"message": "q3"}, format="json")
    assert third.status_code == 429 and third.json()["error"]["code"] == "daily_limit"
    assert 0 < int(third["Retry-After"]) <= 86400
    assert AgentRun.objects.count() == 2
    # another visitor has their own allowance
    other = visitor(mint(channel).json()["token"])
    assert other.post(f"{W}/messages/", {"message": "mine"}, format="json").status_code == 201


def test_an_idempotency_key_sent_twice_starts_one_run(channel):
    client = visitor(mint(channel).json()["token"])
    body = {"message": "once", "idempotency_key": "k-1"}
    first = client.post(f"{W}/messages/", body, format="json").json()
    second = client.post(f"{W}/messages/", body, format="json").json()
    assert first["run_id"] == second["run_id"] and AgentRun.objects.count() == 1


# -- visitor isolation ----------------------------------------------------------------------------


def _finish(run_id, answer: str) -> None:
    from runtime.messages import append_messages  # noqa: F401 - the runtime's own writer
    from runtime.models import AgentMessage

    run = AgentRun.objects.get(pk=run_id)
    conversation = run.conversation
    seq = conversation.last_message_seq + 1
    AgentMessage.objects.create(conversation=conversation, run=run, seq=seq, role="assistant", content=answer)
    AgentConversation.objects.filter(pk=conversation.pk).update(last_message_seq=seq)
    AgentRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED)


# the stream view gives its connection back (closing it inside a test's transaction): commit for real
@pytest.mark.django_db(transaction=True)
def test_a_visitor_reads_and_rates_only_their_own_conversation(channel):
    alice = visitor(mint(channel).json()["token"])
    bob = visitor(mint(channel).json()["token"])
    sent = alice.post(f"{W}/messages/", {"message": "alice's secret"}, format="json").json()
    _finish(sent["run_id"], "**Hello** Alice")

    mine = alice.get(f"{W}/conversations/{sent['conversation_id']}/")
    assert mine.status_code == 200
    assert [(m["role"], m["content"]) for m in mine.json()["messages"]] == [
        ("user", "alice's secret"),
        ("assistant", "**Hello** Alice"),
    ]
    assert bob.get(f"{W}/conversations/{sent['conversation_id']}/").status_code == 404
    assert (
        bob.get(
            f"{W}/runs/{sent['run_id']}/stream/?anonymous_token={bob._credentials['HTTP_X_ANONYMOUS_TOKEN']}"
        ).status_code
        == 404
    )
    # bob cannot continue alice's conversation either
    taken = bob.post(
        f"{W}/messages/", {"message": "hi", "conversation_id": sent["conversation_id"]}, format="json"
    )
    assert taken.status_code == 404
    assert (
        bob.post(f"{W}/feedback/", {"run_id": sent["run_id"], "rating": "up"}, format="json").status_code
        == 404
    )
    rated = alice.post(f"{W}/feedback/", {"run_id": sent["run_id"], "rating": "down"}, format="json")
    assert rated.status_code == 200 and WidgetFeedback.objects.get().rating == -1
    assert (
        alice.get(f"{W}/conversations/{sent['conversation_id']}/").json()["messages"][1]["rating"] == "down"
    )
    bad = alice.post(f"{W}/feedback/", {"run_id": sent["run_id"], "rating": "meh"}, format="json")
    assert bad.status_code == 400 and "rating" in bad.json()["error"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_the_stream_answers_the_channels_origin_only(channel):
    token = mint(channel).json()["token"]
    sent = visitor(token).post(f"{W}/messages/", {"message": "hi"}, format="json").json()
    AgentRun.objects.filter(pk=sent["run_id"]).update(status=RunStatus.SUCCEEDED)
    url = f"{W}/runs/{sent['run_id']}/stream/?anonymous_token={token}&from_seq=1"
    ok = APIClient().get(url, HTTP_ORIGIN=SITE)
    assert ok.status_code == 204 and ok["Access-Control-Allow-Origin"] == SITE
    evil = APIClient().get(url, HTTP_ORIGIN="https://evil.example.net")
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil
    forged = APIClient().get(url.replace(token, token[:-3] + "xyz"), HTTP_ORIGIN=SITE)
    assert forged.status_code == 401


def test_preflights_are_answered_and_other_apis_stay_closed_to_channel_origins(channel):
    preflight = APIClient().options(
        f"{W}/messages/",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-anonymous-token",
    )
    assert preflight.status_code == 200 and preflight["Access-Control-Allow-Origin"] == SITE
    assert "x-anonymous-token" in preflight["Access-Control-Allow-Headers"]
    with override_settings(CORS_ALLOWED_ORIGINS=[]):
        other = APIClient().get("/api/agents/models/", HTTP_ORIGIN=SITE)
    assert "Access-Control-Allow-Origin" not in other


def test_mints_are_rate_limited_per_address(channel):
    # every test starts with no mint counted (tests/conftest.py), so these are the first three
    with override_settings(WIDGET_SESSION_MINT_RATE="2/min"):
        codes = [mint(channel).status_code for _ in range(3)]
    assert codes == [201, 201, 429]


@pytest.mark.django_db(transaction=True)
def test_malformed_input_is_a_clear_4xx_never_a_500(channel):
    client = visitor(mint(channel).json()["token"])
    cases = [
        client.get(f"{W}/conversations/not-a-uuid/"),
        client.get(f"{W}/conversations/{'0' * 8}-0000-0000-0000-{'0' * 12}/"),
        client.post(f"{W}/messages/", {"message": "hi", "conversation_id": "nope"}, format="json"),
        client.post(f"{W}/messages/", {"message": ["not", "text"]}, format="json"),
        client.post(f"{W}/messages/", {"message": "nul \x00 inside"}, format="json"),
        client.post(f"{W}/messages/", "[1, 2]", content_type="application/json"),
        client.post(f"{W}/messages/", "{not json", content_type="application/json"),
        client.post(f"{W}/feedback/", {"run_id": "x", "rating": "up"}, format="json"),
        client.get(
            f"{W}/runs/not-a-uuid/stream/?anonymous_token={client._credentials['HTTP_X_ANONYMOUS_TOKEN']}"
        ),
        APIClient().post(f"{W}/session/", "[]", content_type="application/json", HTTP_ORIGIN=SITE),
        APIClient().post(f"{W}/session/", {"key": "pk_\x00"}, format="json", HTTP_ORIGIN=SITE),
        APIClient().post(
            f"{W}/session/", {"key": channel.publishable_key}, format="json", HTTP_ORIGIN="not an origin"
        ),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
        assert response.json()["error"]["message"]
    assert not AgentRun.objects.exists()


# -- identified visitors --------------------------------------------------------------------------


def _identity(channel, sub="user-42", *, secret=None, seconds=600, algorithm="HS256", **claims) -> str:
    import time

    import jwt

    payload = {"sub": sub, "exp": int(time.time()) + seconds, **claims}
    if sub is None:
        del payload["sub"]
    return jwt.encode(payload, secret or channel.identity_secret, algorithm=algorithm)


def test_an_identified_visitor_is_the_same_visitor_on_every_device(channel):
    laptop = APIClient().post(
        f"{W}/session/",
        {"key": channel.publishable_key, "user_token": _identity(channel)},
        format="json",
        HTTP_ORIGIN=SITE,
    )
    assert laptop.status_code == 201 and laptop.json()["visitor"] == "user-42"
    assert laptop.json()["latest_conversation_id"] is None
    sent = (
        visitor(laptop.json()["token"])
        .post(f"{W}/messages/", {"message": "from my laptop"}, format="json")
        .json()
    )

    phone = APIClient().post(
        f"{W}/session/",
        {"key": channel.publishable_key, "user_token": _identity(channel)},
        format="json",
        HTTP_ORIGIN=SITE,
    )
    assert phone.status_code == 201
    assert phone.json()["latest_conversation_id"] == sent["conversation_id"]
    mine = visitor(phone.json()["token"]).get(f"{W}/conversations/{sent['conversation_id']}/")
    assert mine.status_code == 200 and mine.json()["messages"][0]["content"] == "from my laptop"
    assert AnonymousSession.objects.filter(metadata__visitor="user-42").count() == 1

    # another user of the host site is another visitor
    other = (
        APIClient()
        .post(
            f"{W}/session/",
            {"key": channel.publishable_key, "user_token": _identity(channel, "user-7")},
            format="json",
            HTTP_ORIGIN=SITE,
        )
        .json()
    )
    assert other["visitor"] == "user-7" and other["token"] != laptop.json()["token"]
    assert visitor(other["token"]).get(f"{W}/conversations/{sent['conversation_id']}/").status_code == 404


@pytest.mark.parametrize(
    "token",
    [
        lambda c: _identity(c, secret="another-secret-that-is-long-enough-for-hs256"),
        lambda c: _identity(c, seconds=-10),
        lambda c: _identity(c, seconds=3 * 86400),
        lambda c: _identity(c, sub=None),
        lambda c: _identity(c, sub=""),
        lambda c: _identity(c, algorithm="HS512"),
        lambda c: "not.a.jwt",
        lambda c: __import__("jwt").encode({"sub": "x", "exp": 9999999999}, None, algorithm="none"),
    ],
    ids=["other secret", "expired", "exp too far", "no sub", "empty sub", "HS512", "garbage", "alg none"],
)
def test_a_bad_identity_token_is_refused_and_creates_nothing(channel, token):
    response = APIClient().post(
        f"{W}/session/",
        {"key": channel.publishable_key, "user_token": token(channel)},
        format="json",
        HTTP_ORIGIN=SITE,
    )
    assert response.status_code == 401, response.content
    assert (
        response.json()["error"]["code"] == "identity_invalid"
        and "user_token" in response.json()["error"]["fields"]
    )
    assert not AnonymousSession.objects.exists()


def test_a_new_identity_secret_refuses_tokens_signed_with_the_old_one(channel, owner, other_staff):
    from runtime.channels.services import widget_channel_rotate_identity_secret

    old = _identity(channel)
    with pytest.raises(ChannelError):
        widget_channel_rotate_identity_secret(channel=channel, user=other_staff)
    widget_channel_rotate_identity_secret(channel=channel, user=owner)
    body = {"key": channel.publishable_key, "user_token": old}
    assert APIClient().post(f"{W}/session/", body, format="json", HTTP_ORIGIN=SITE).status_code == 401
    body["user_token"] = _identity(channel)
    assert APIClient().post(f"{W}/session/", body, format="json", HTTP_ORIGIN=SITE).status_code == 201


def test_a_visitor_token_starts_runs_only_through_the_widget(channel):
    """The general run API would skip the widget's limits (messages per visitor per day)."""
    token = mint(channel).json()["token"]
    client = APIClient()
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=token)
    response = client.post(
        "/api/agents/runs/",
        {"agent_key": "support", "messages": [{"role": "user", "content": "hi"}]},
        format="json",
    )
    assert response.status_code == 403 and "only through the widget" in response.json()["error"]["message"]
    assert not AgentRun.objects.exists()


def test_the_agents_daily_budget_holds_for_widget_visitors_too(channel, settings):
    """The budget is the agent's, shared with its API keys: each widget run reserves its estimate
    before it starts; once it is spent the visitor gets a polite refusal and nothing runs."""
    from decimal import Decimal

    from runtime.channels.api_key_models import AgentBudget, SpendReservation

    settings.AGENT_BUDGET_MIN_RESERVE_USD = "0.01"
    AgentBudget.objects.create(agent_key="support", daily_budget_usd=Decimal("0.02"))
    client = visitor(mint(channel).json()["token"])
    sent = [client.post(f"{W}/messages/", {"message": f"question {n}"}, format="json") for n in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 429]
    refused = sent[2].json()["error"]
    assert refused["code"] == "budget_exhausted" and "come back tomorrow" in refused["message"]
    assert int(sent[2]["Retry-After"]) > 0
    assert AgentRun.objects.count() == 2 and SpendReservation.objects.count() == 2


def test_a_token_budget_holds_for_widget_visitors_on_a_model_without_a_price(owner, settings):
    """An agent on a model nobody priced, with a daily budget in tokens: visitors chat until the
    tokens are reserved, then get the same polite refusal (never the owner's technical reason)."""
    from runtime.channels.api_key_models import AgentBudget, AgentDailySpend

    settings.AGENT_BUDGET_MIN_RESERVE_TOKENS = 1000
    agent = agent_create(
        owner=owner,
        slug="local",
        name="Local",
        config={"system_prompt": "Help.", "model": "openai:my-vllm-model"},
    )
    agent_publish(agent=agent, user=owner)
    channel = widget_channel_create(agent_key="local", user=owner, allowed_origins=[SITE])
    AgentBudget.objects.create(agent_key="local", daily_budget_usd=Decimal("1.00"))
    client = visitor(mint(channel).json()["token"])
    money_only = client.post(f"{W}/messages/", {"message": "hello"}, format="json")
    assert money_only.status_code == 429 and "come back tomorrow" in money_only.json()["error"]["message"]
    assert "price" not in money_only.json()["error"]["message"]  # the why is the owner's, not the visitor's
    AgentBudget.objects.filter(agent_key="local").update(daily_budget_tokens=2000)
    sent = [client.post(f"{W}/messages/", {"message": f"question {n}"}, format="json") for n in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 429]
    refused = sent[2].json()["error"]
    assert refused["code"] == "budget_exhausted" and refused["message"] == (
        "This assistant has answered all it can for today. Please come back tomorrow."
    )
    assert int(sent[2]["Retry-After"]) > 0
    assert AgentRun.objects.filter(agent_key="local").count() == 2
    assert AgentDailySpend.objects.get(agent_key="local").reserved_tokens == 2000
