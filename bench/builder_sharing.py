"""Sharing at scale: list pages, the editor and the run list for a colleague who sees 1,000 agents
through 10 teams and 100 direct shares, among 10,000 agents; next to the owner-only peer (a user who
owns 1,000 agents and has nothing shared). Also the per-request cost of the runtime's permission
check (``runtime.access.may_test_agent``, what every API run and the playground ask), shared
agent against own agent.

Server time is measured in-process through Django's test client (full middleware and templates,
no network), p50 of ``REPEATS`` requests after a warm-up. Query counts are taken once with a few
shares and once at full size; they must be equal. Target: p50 at most 50 ms, queries constant.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid

from bench.common import cpu_p50, dedicated_database, page_p50, setup_django

AGENTS = 10_000
TEAMS = 10
PER_TEAM = 90  # 10 teams x 90 agents + 100 direct shares = 1,000 agents seen by the colleague
DIRECT = 100
RUNS = 10_000
OTHERS = 20  # other colleagues with shares of their own, so the tables are not just ours
REPEATS = 30
TARGET_MS = 50.0


def _agents(owners: list, start: int, count: int) -> list:
    from builder.models import Agent, AgentDraft, AgentDraftRevision

    config = {"system_prompt": "You help.", "model": "demo"}
    made = Agent.objects.bulk_create(
        Agent(slug=f"agent-{i}", name=f"Agent {i}", description="bench", owner=owners[i % len(owners)])
        for i in range(start, start + count)
    )
    AgentDraft.objects.bulk_create(AgentDraft(agent=a, config=config) for a in made)
    AgentDraftRevision.objects.bulk_create(
        AgentDraftRevision(agent=a, revision=1, config=config) for a in made
    )
    return made


def _grant(table, who: dict, agents: list, codenames: list[str]) -> None:
    from django.contrib.auth.models import Permission

    perms = list(Permission.objects.filter(content_type__app_label="builder", codename__in=codenames))
    table.objects.bulk_create(
        (table(content_object=a, permission=p, **who) for a in agents for p in perms),
        batch_size=5_000,
        ignore_conflicts=True,
    )


def _runs(agents: list, user, count: int) -> None:
    from django.utils import timezone

    from runtime.models import AgentRun

    now = timezone.now()
    AgentRun.objects.bulk_create(
        (
            AgentRun(
                id=uuid.uuid4(),
                agent_key=agents[i % len(agents)].slug,
                user=user,
                status="succeeded",
                available_at=now,
                agent_version="draft:x@1",
            )
            for i in range(count)
        ),
        batch_size=2_000,
    )


def _measure(client, url: str) -> tuple[float, int]:
    return page_p50(client, url, repeats=REPEATS)


def _p50_ms(check) -> float:
    for _ in range(5):
        assert check()
    times = []
    for _ in range(200):
        started = time.perf_counter()
        check()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _check_cost(user, key: str) -> float:
    from runtime.access import may_test_agent

    return _p50_ms(lambda: may_test_agent(agent_key=key, user=user))


def _owner_only_cost(user, key: str) -> float:
    """The rule before sharing, as a yardstick: one lookup of the owner column."""
    from builder.models import Agent

    return _p50_ms(
        lambda: Agent.objects.filter(slug=key).values_list("owner_id", flat=True).first() == user.pk
    )


def main() -> list[dict]:
    with dedicated_database(prefix="benchs") as url:
        setup_django(url, ALLOWED_HOSTS="testserver")
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db import connections
        from django.test import Client

        from builder.models import AgentGroupObjectPermission, AgentUserObjectPermission

        User = get_user_model()  # noqa: N806
        owners = [User.objects.create_user(f"owner{i}", is_staff=True) for i in range(10)]
        ana = User.objects.create_user("ana", is_staff=True)
        others = [User.objects.create_user(f"other{i}", is_staff=True) for i in range(OTHERS)]
        teams = [Group.objects.create(name=f"team {i}") for i in range(TEAMS)]
        ana.groups.add(*teams)
        peer, colleague = Client(), Client()
        peer.force_login(owners[0])  # owns 1,000 of the 10,000 agents, nothing shared
        colleague.force_login(ana)

        # a few shares first: the query counts at this size must hold at full size
        first = _agents(owners, 0, 20)
        _grant(AgentUserObjectPermission, {"user": ana}, first[:2], ["view_agent"])
        _grant(AgentGroupObjectPermission, {"group": teams[0]}, first[2:4], ["view_agent", "change_agent"])
        _runs(first, ana, 20)
        own_editor = first[0].get_absolute_url()  # owned by owners[0]
        shared_editor = first[2].get_absolute_url()  # editor through team 0
        plan = [
            ("agent list", "colleague (shares)", colleague, "/"),
            ("agent list", "owner-only peer", peer, "/"),
            ("agent list, shared with me", "colleague (shares)", colleague, "/?shared=1"),
            ("agent editor", "colleague (shares)", colleague, shared_editor),
            ("agent editor", "owner-only peer", peer, own_editor),
            ("run list (admin)", "colleague (shares)", colleague, "/admin/runtime/agentrun/"),
            ("run list (admin)", "owner-only peer", peer, "/admin/runtime/agentrun/"),
        ]
        small = {(n, who): _measure(c, u)[1] for n, who, c, u in plan}

        rest = _agents(owners, 20, AGENTS - 20)
        agents = first + rest
        shared = [a for a in agents if a.owner_id != owners[0].pk][: TEAMS * PER_TEAM + DIRECT]
        for t, team in enumerate(teams):
            chunk = shared[t * PER_TEAM : (t + 1) * PER_TEAM]
            _grant(AgentGroupObjectPermission, {"group": team}, chunk, ["view_agent", "change_agent"])
        _grant(AgentUserObjectPermission, {"user": ana}, shared[TEAMS * PER_TEAM :], ["view_agent"])
        for i, other in enumerate(others):  # unrelated shares in the same tables
            _grant(
                AgentUserObjectPermission, {"user": other}, agents[i * 100 : (i + 1) * 100], ["view_agent"]
            )
        _runs(agents, ana, RUNS // 2)
        _runs(agents, owners[0], RUNS // 2)
        from builder.access import visible_to

        seen = visible_to(ana, type(agents[0]).objects.all()).count()

        rows = []
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        for name, who, client, url in plan:
            p50, queries = _measure(client, url)
            cpu = cpu_p50(client, url, repeats=REPEATS)
            rows.append(
                {
                    "page": name,
                    "who": who,
                    "p50 server ms": f"{p50:.1f}",
                    "p50 CPU ms": f"{cpu:.1f}",
                    "queries (few shares)": small[(name, who)],
                    "queries (full)": queries,
                    "target (<=50 ms, fixed queries)": "met"
                    if p50 <= TARGET_MS and queries == small[(name, who)]
                    else "MISSED",
                    "load avg (1/5/15 min)": load,
                }
            )
            print(rows[-1], flush=True)
        own = _check_cost(owners[0], first[0].slug)
        via_team = _check_cost(ana, shared[0].slug)
        yardstick = _owner_only_cost(owners[0], first[0].slug)
        rows.append(
            {
                "page": "permission check per API request (may_test_agent)",
                "who": f"colleague via a team: {via_team:.2f} ms; owner: {own:.2f} ms; "
                f"owner-only rule (one owner_id lookup): {yardstick:.2f} ms",
                "p50 server ms": f"+{via_team - yardstick:.2f} over owner-only",
                "p50 CPU ms": "",
                "queries (few shares)": "",
                "queries (full)": "",
                "target (<=50 ms, fixed queries)": f"colleague sees {seen} of {AGENTS} agents",
                "load avg (1/5/15 min)": load,
            }
        )
        print(rows[-1], flush=True)
        connections.close_all()
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
