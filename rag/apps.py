from django.apps import AppConfig


class RagConfig(AppConfig):
    name = "rag"
    verbose_name = "Knowledge"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # app loading: these import models, which exist only once the app registry is ready
        from rag.attachments import read_attachment
        from rag.jobs import register
        from runtime.attachments import set_file_reader

        register()
        # files attached to chat messages are read like knowledge documents
        set_file_reader(read_attachment)
