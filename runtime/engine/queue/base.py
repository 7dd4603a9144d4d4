from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.engine.leases import Claim
    from runtime.models import AgentRun


class RunQueue(ABC):
    """How runs reach workers. One verb each side: ``enqueue`` and ``claim``."""

    name = "base"

    @abstractmethod
    def enqueue(self, cursor, run: AgentRun) -> None:
        """Called inside the transaction that created ``run``."""

    def enqueue_sql(self, run: AgentRun) -> tuple[str, list] | None:
        """An SQL expression that enqueues ``run`` in the very statement that inserts it.

        Saves a round trip on the hot path of ``POST runs/``. None (the default): the
        backend has none, and ``enqueue`` is called instead.
        """
        return None

    @abstractmethod
    def claim(self, *, owner: str, limit: int, ttl: float, agent_keys: list[str] | None) -> list[Claim]:
        """Claim up to ``limit`` due runs for ``owner`` (PostgreSQL decides; see runtime.engine.leases)."""

    def done(self, claim: Claim) -> None:  # noqa: B027 - an optional hook
        """The worker is finished with a claim (acknowledge it where the backend needs that)."""

    def maintain(self) -> None:  # noqa: B027 - an optional hook
        """Periodic upkeep run by workers (reclaiming, reconciling)."""
