"""Builder pages at scale: agent list, agent editor and run list with 1,000 agents, 100 systems, 10,000 runs.

Server time is measured in-process through Django's test client (the full middleware
stack and template rendering, no network), p50 of ``REPEATS`` requests after a warm-up.
Query counts are taken once with a handful of rows and once at full size; they must be equal.
Target: p50 at most 50 ms on each page, query count independent of the number of rows.
"""

from __future__ import annotations

import os
import uuid

from bench.common import dedicated_database, page_p50, setup_django

AGENTS = 1_000
SYSTEMS = 100
RUNS = 10_000
OWNERS = 10  # agents are spread over owners, as on a real team site; one owner sees 100
REPEATS = 30
TARGET_MS = 50.0


def _fill(owners: list, start: int, agents: int, systems: int, runs: int) -> None:
    from django.utils import timezone

    from builder.models import Agent, AgentDraft, AgentDraftRevision, AgentSystem
    from runtime.models import AgentRun

    config = {"system_prompt": "You help.", "model": "demo"}
    made = Agent.objects.bulk_create(
        Agent(
            slug=f"agent-{i}",
            name=f"Agent {i}",
            description="A benchmark agent",
            owner=owners[i % len(owners)],
        )
        for i in range(start, start + agents)
    )
    AgentDraft.objects.bulk_create(AgentDraft(agent=a, config=config) for a in made)
    AgentDraftRevision.objects.bulk_create(
        AgentDraftRevision(agent=a, revision=1, config=config) for a in made
    )
    AgentSystem.objects.bulk_create(
        AgentSystem(
            slug=f"system-{start}-{i}", name=f"System {i}", owner=owners[0], entry_agent=made[i % len(made)]
        )
        for i in range(systems)
    )
    now = timezone.now()
    AgentRun.objects.bulk_create(
        (
            AgentRun(
                id=uuid.uuid4(),
                agent_key=made[i % len(made)].slug,
                user=owners[0],
                status="succeeded",
                available_at=now,
                agent_version="draft:x@1",
            )
            for i in range(runs)
        ),
        batch_size=2_000,
    )


def _measure(client, url: str) -> tuple[float, int]:
    return page_p50(client, url, repeats=REPEATS)


def main() -> list[dict]:
    with dedicated_database(prefix="benchb") as url:
        setup_django(url, ALLOWED_HOSTS="testserver")
        from django.contrib.auth import get_user_model
        from django.db import connections
        from django.test import Client

        from builder.models import Agent

        User = get_user_model()  # noqa: N806
        owners = [
            User.objects.create_user(f"owner{i}", is_staff=True, is_superuser=(i == 0)) for i in range(OWNERS)
        ]
        client = Client()
        client.force_login(owners[1])  # a plain staff user: sees their own agents
        admin = Client()
        admin.force_login(owners[0])  # the superuser: the run list shows every run

        _fill(owners, 0, 20, 2, 20)
        editor = Agent.objects.filter(owner=owners[1]).first().get_absolute_url()
        pages = {
            # yardstick: the bare Unfold frame (sidebar, header), the floor every page above pays
            "admin index (yardstick)": (client, "/admin/"),
            "agent list": (client, "/"),
            "agent editor": (client, editor),
            "run list (admin)": (admin, "/admin/runtime/agentrun/"),
        }
        small = {name: _measure(c, u)[1] for name, (c, u) in pages.items()}
        _fill(owners, 20, AGENTS - 20, SYSTEMS - 2, RUNS - 20)
        rows = []
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        for name, (c, u) in pages.items():
            p50, queries = _measure(c, u)
            rows.append(
                {
                    "page": name,
                    "p50 server ms": f"{p50:.1f}",
                    "queries (few rows)": small[name],
                    "queries (full)": queries,
                    "target (<=50 ms, fixed queries)": "met"
                    if p50 <= TARGET_MS and queries == small[name]
                    else "MISSED",
                    "load avg (1/5/15 min)": load,
                }
            )
            print(rows[-1], flush=True)
        connections.close_all()
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
