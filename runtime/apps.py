from django.apps import AppConfig

from runtime import checks, conf  # noqa: F401 - checks registers its system checks on import


class RuntimeConfig(AppConfig):
    name = "runtime"
    verbose_name = "Agent runtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        conf.validate()
        conf.validate_settings()
        # app loading: both import runtime models, which exist only once the registry is ready
        from runtime import registry
        from runtime.channels import cors

        cors.connect()
        registry.autodiscover()
