from django.apps import AppConfig

from runtime import checks, conf, registry  # noqa: F401 - checks registers its system checks on import


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Agent runtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        conf.validate()
        conf.validate_settings()
        from runtime.channels import cors  # app loading: it imports runtime models

        cors.connect()
        registry.autodiscover()
