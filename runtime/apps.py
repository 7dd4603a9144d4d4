from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Agent runtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from runtime import checks, conf, registry  # noqa: F401 - checks registers on import

        conf.validate()
        conf.validate_settings()
        from runtime.channels import cors

        cors.connect()
        registry.autodiscover()
