"""User-scope memory written before namespaces existed goes to the namespace of the agent that
wrote it ("owner:<id>"), so it stays visible to that owner's agents and no one else's. Entries
written by code agents (no builder row) keep the shared code namespace ("")."""

from django.db import migrations


def backfill(apps, schema_editor):
    Agent = apps.get_model("builder", "Agent")
    AgentSystem = apps.get_model("builder", "AgentSystem")
    MemoryEntry = apps.get_model("runtime", "MemoryEntry")
    writers = MemoryEntry.objects.filter(scope="user").values("agent_key")
    for model in (AgentSystem, Agent):
        for slug, owner_id in model.objects.filter(slug__in=writers).values_list("slug", "owner_id"):
            MemoryEntry.objects.filter(scope="user", agent_key=slug, namespace="").update(
                namespace=f"owner:{owner_id}"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("builder", "0002_remove_tooldefinition_secrets_encrypted_and_more"),
        ("runtime", "0004_memoryentry_namespace"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
