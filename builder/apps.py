from django.apps import AppConfig

from rag.access import set_knowledge_access
from runtime.access import set_agent_access
from runtime.registry import register_resolver


class BuilderConfig(AppConfig):
    name = "builder"
    verbose_name = "Agent builder"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # app loading: these import models, which exist only once the app registry is ready
        from builder.access_seams import BuilderAgentAccess, BuilderKnowledgeAccess
        from builder.runtime_adapter import agent_key_exists, resolve

        register_resolver(resolve, exists=agent_key_exists)
        set_agent_access(BuilderAgentAccess())
        set_knowledge_access(BuilderKnowledgeAccess())
