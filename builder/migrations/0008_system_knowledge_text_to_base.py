"""A system's old knowledge text becomes a knowledge base attached to the system.

Forward: every system whose ``knowledge`` (short snippets every member saw in its system prompt)
is not empty gets a knowledge base owned by the system's owner and named after the system, holding
one pasted-text document ("Shared knowledge.txt": the snippets as the old text box showed them,
separated by a line holding only ``---``), queued for indexing exactly as a pasted text is: through
``rag.services.document_upload`` (file stored through the storage API, a ``rag.ingest`` run queued
in the same transaction; the ordinary workers index it). The base is attached to the system in
automatic mode, so members keep seeing the text for the questions it answers. The column itself is
removed by the next migration.

Reverse: the text goes back into ``knowledge`` from that document, and the base is deleted if it
still holds only that document (a base someone added documents to is left in place, detached).

The knowledge base, its document and the ingestion run are written with the current rag and
runtime code (a queued run cannot be written correctly from historical models), so this migration
needs the rag and runtime tables as they are at its dependencies. A later migration that changes
``rag_knowledgebase``, ``rag_document`` or the runtime's run tables must run after it: its
migration file should list this one in ``run_before``.
"""

from django.db import migrations

DOCUMENT_NAME = "Shared knowledge.txt"
SEPARATOR = "\n---\n"


def marker(slug: str) -> str:
    return f"Made from the shared knowledge text of the system {slug} when knowledge bases replaced it."


def text_to_base(apps, schema_editor):
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rag.services import document_upload, knowledge_base_create

    AgentSystem = apps.get_model("builder", "AgentSystem")
    SystemKnowledge = apps.get_model("builder", "SystemKnowledge")
    User = get_user_model()
    for system in AgentSystem.objects.exclude(knowledge=[]).order_by("pk"):
        snippets = [str(s).strip() for s in system.knowledge or [] if str(s).strip()]
        if not snippets:
            continue
        owner = User.objects.get(pk=system.owner_id)
        base = knowledge_base_create(owner=owner, name=system.name[:200], description=marker(system.slug))
        text = SEPARATOR.join(snippets)
        document_upload(
            knowledge_base=base, upload=SimpleUploadedFile(DOCUMENT_NAME, text.encode()), user=owner
        )
        SystemKnowledge.objects.create(system_id=system.pk, knowledge_base_id=base.pk, mode="auto")


def base_to_text(apps, schema_editor):
    from rag.models import KnowledgeBase
    from rag.services import knowledge_base_delete

    AgentSystem = apps.get_model("builder", "AgentSystem")
    SystemKnowledge = apps.get_model("builder", "SystemKnowledge")
    for system in AgentSystem.objects.order_by("pk"):
        link_ids = SystemKnowledge.objects.filter(system_id=system.pk).values_list("knowledge_base_id", flat=True)
        for base in KnowledgeBase.objects.filter(pk__in=list(link_ids), description=marker(system.slug)):
            document = base.documents.filter(name=DOCUMENT_NAME).first()
            if document is None:
                continue
            with document.file.open("rb") as handle:
                text = handle.read().decode()
            system.knowledge = [s.strip() for s in text.split(SEPARATOR) if s.strip()]
            system.save(update_fields=["knowledge"])
            if base.documents.count() == 1:
                knowledge_base_delete(knowledge_base=base)
            else:
                SystemKnowledge.objects.filter(system_id=system.pk, knowledge_base_id=base.pk).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("builder", "0007_system_knowledge"),
        ("rag", "0003_knowledge_base_own_permission"),
        ("runtime", "0010_conversation_agent_recent_index"),
    ]

    operations = [migrations.RunPython(text_to_base, base_to_text)]
