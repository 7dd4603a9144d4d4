from django.apps import AppConfig


class BuilderConfig(AppConfig):
    name = "builder"
    verbose_name = "Agent builder"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from builder.runtime_adapter import resolve
        from runtime.registry import register_resolver

        register_resolver(resolve)
