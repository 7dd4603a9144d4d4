"""Conversation writes the API needs beyond ``runtime.services`` (rename, delete).

Kept here so the API owns no ORM writes in its views; they belong next to
``conversation_create`` in ``runtime/services.py`` when that module adopts them.
"""

from __future__ import annotations

from django.db import transaction

from runtime.models import AgentConversation


def conversation_rename(*, conversation: AgentConversation, title: str) -> AgentConversation:
    conversation.title = title.strip()
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: AgentConversation) -> None:
    """Delete a conversation with its messages, runs and events.

    A worker still executing one of its runs loses nothing it must keep: its
    lease-conditioned writes match no row any more, so it stops.
    """
    conversation.delete()
