from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.leases import Claim
    from runtime.models import AgentRun


class RunQueue:
    """How runs reach workers. One verb each side: ``enqueue`` and ``claim``."""

    name = "base"

    def enqueue(self, cursor, run: AgentRun) -> None:
        """Called inside the transaction that created ``run``."""
        raise NotImplementedError

    def claim(self, *, owner: str, limit: int, ttl: float, agent_keys: list[str] | None) -> list[Claim]:
        raise NotImplementedError

    def done(self, claim: Claim) -> None:
        """The worker is finished with a claim (acknowledge it where the backend needs that)."""

    def maintain(self) -> None:
        """Periodic upkeep run by workers (reclaiming, reconciling)."""
