from django.db import migrations, models


class Migration(migrations.Migration):
    """Message seqs are reserved by bumping a counter on the conversation row.

    ``max(seq)`` read in the same UPDATE did not serialise writers: a second writer
    blocked on the row lock re-reads the row but not the messages, so two concurrent
    appends to one conversation chose the same seq and one of them failed.
    """

    dependencies = [("runtime", "0002_run_created_index")]

    operations = [
        migrations.AddField(
            model_name="agentconversation",
            name="last_message_seq",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunSQL(
            "UPDATE runtime_agentconversation AS c SET last_message_seq = m.seq "
            "FROM (SELECT conversation_id, max(seq) AS seq FROM runtime_agentmessage "
            "GROUP BY conversation_id) AS m WHERE m.conversation_id = c.id",
            migrations.RunSQL.noop,
        ),
    ]
