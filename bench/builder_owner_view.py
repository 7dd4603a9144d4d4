"""The owner's view at scale: one agent with 10,000 conversations (10,000 runs, 20,000 messages,
widget feedback on a tenth), beside another agent with as many.

Server time is measured in-process through Django's test client (full middleware and templates,
no network), p50 of ``REPEATS`` requests after a warm-up, next to the bare admin index as the
yardstick every builder page pays. Query counts are taken once with a handful of conversations
and once at full size; they must be equal. Target: p50 at most 50 ms for the list, its filters
and the transcript; usage (a 30-day aggregate over every run) at most 100 ms.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from bench.common import dedicated_database, page_p50, setup_django

CONVERSATIONS = 10_000
REPEATS = 20
TARGETS = {"usage": 100.0}
TARGET_MS = 50.0


def _fill(owner, agent_key: str, start: int, count: int, channel=None) -> None:
    from django.utils import timezone

    from runtime.models import AgentConversation, AgentMessage, AgentRun, WidgetFeedback

    now = timezone.now()
    conversations, runs, messages, feedback = [], [], [], []
    for i in range(start, start + count):
        when = now - timedelta(minutes=i * 3)  # spread over about 20 days
        kind = i % 3
        session = uuid.uuid4() if kind == 0 else None
        conversation = AgentConversation(
            id=uuid.uuid4(),
            agent_key=agent_key,
            user=owner if kind == 1 else None,
            anonymous_session_id=session,
            title=f"Question {i} about order {i * 7}",
            metadata={"playground": True} if kind == 1 else {},
            last_message_seq=2,
        )
        conversations.append((conversation, when))
        caller = {0: f"anon:{session}", 1: f"user:{owner.pk}", 2: f"apikey:{uuid.uuid4()}"}[kind]
        run = AgentRun(
            id=uuid.uuid4(),
            conversation=conversation,
            agent_key=agent_key,
            user=owner if kind == 1 else None,
            anonymous_session_id=session,
            status="failed" if i % 50 == 0 else "succeeded",
            metadata={"channel": "widget", "widget_channel": "x"} if kind == 0 else {},
            caller=caller,
            prompt_tokens=100,
            completion_tokens=20,
            cost_usd="0.0010",
            available_at=when,
        )
        runs.append((run, when))
        messages += [
            AgentMessage(conversation=conversation, run=run, seq=1, role="user", content=f"Where is order {i * 7}?"),
            AgentMessage(conversation=conversation, run=run, seq=2, role="assistant", content="It ships today."),
        ]  # fmt: skip
        if kind == 0 and channel is not None and i % 10 == 0:
            feedback.append(WidgetFeedback(run=run, channel=channel, anonymous_session_id=session, rating=1))
    AgentConversation.objects.bulk_create([c for c, _ in conversations], batch_size=2_000)
    AgentRun.objects.bulk_create([r for r, _ in runs], batch_size=2_000)
    AgentMessage.objects.bulk_create(messages, batch_size=4_000)
    WidgetFeedback.objects.bulk_create(feedback, batch_size=2_000)
    # auto_now(_add) fields take the insert time: set the spread-out times afterwards
    for model, rows, column in (
        (AgentConversation, conversations, "updated_at"),
        (AgentRun, runs, "created_at"),
    ):
        for obj, when in rows:
            setattr(obj, column, when)
        model.objects.bulk_update([o for o, _ in rows], [column], batch_size=2_000)


def _measure(client, url: str) -> tuple[float, int]:
    return page_p50(client, url, repeats=REPEATS)


def main() -> list[dict]:
    with dedicated_database(prefix="benchov") as url:
        setup_django(url, ALLOWED_HOSTS="testserver")
        from django.contrib.auth import get_user_model
        from django.db import connections
        from django.test import Client
        from django.utils import timezone

        from builder.services import agent_create, agent_publish
        from runtime.channels.services import widget_channel_create
        from runtime.models import AgentConversation

        owner = get_user_model().objects.create_user("owner", is_staff=True)
        agent = agent_create(owner=owner, slug="support", name="Support", config={"system_prompt": "x"})
        agent_publish(agent=agent, user=owner)
        other = agent_create(owner=owner, slug="other", name="Other", config={"system_prompt": "x"})
        channel = widget_channel_create(agent_key="support", user=owner)
        client = Client()
        client.force_login(owner)

        _fill(owner, "support", 0, 9, channel)
        base = f"/agents/{agent.public_id}"
        since = (timezone.now() - timedelta(days=3)).date().isoformat()

        def pages() -> dict[str, str]:
            newest = AgentConversation.objects.filter(agent_key="support").order_by("-updated_at").first()
            return {
                "admin index (yardstick)": "/admin/",
                "conversations": f"{base}/conversations/",
                "conversations, page 40": f"{base}/conversations/?page=40",
                "search (text in messages)": f"{base}/conversations/?q=order+42",
                "source = web widget": f"{base}/conversations/?source=widget",
                "source = API key": f"{base}/conversations/?source=api_key",
                "last 3 days": f"{base}/conversations/?since={since}",
                "transcript": f"{base}/conversations/{newest.pk}/",
                "usage": f"{base}/usage/",
            }

        small = {name: _measure(client, u)[1] for name, u in pages().items() if "page 40" not in name}
        _fill(owner, "support", 9, CONVERSATIONS - 9, channel)
        _fill(owner, other.slug, 0, CONVERSATIONS)
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")
        rows = []
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        for name, u in pages().items():
            p50, queries = _measure(client, u)
            target = TARGETS.get(name, TARGET_MS)
            few = small.get(name, small["conversations"])
            rows.append(
                {
                    "page": name,
                    "p50 server ms": f"{p50:.1f}",
                    "queries (9 conversations)": few,
                    f"queries ({CONVERSATIONS:,})": queries,
                    "target": f"<= {target:.0f} ms, fixed queries",
                    "met": "met" if p50 <= target and queries == few else "MISSED",
                    "load avg (1/5/15 min)": load,
                }
            )
            print(rows[-1], flush=True)
        connections.close_all()
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
