from __future__ import annotations

from django.urls import path

from builder.views import (
    agent_search,
    agents,
    api_keys,
    io,
    knowledge,
    memory,
    owner_view,
    playground,
    provider_settings,
    publish,
    sharing,
    systems,
    teams,
    tools,
    versions,
)

app_name = "builder"

# The URL folder of each kind of object whose views take ``kind``.
FOLDERS = {"agent": "agents", "system": "systems", "tool": "tools", "knowledge": "knowledge"}
SHAREABLE = ("agent", "system", "tool", "knowledge")


def per_kind(
    route: str, view, name: str, *, kinds: tuple[str, ...] = ("agent", "system"), agent_prefix: bool = True
) -> list:
    """One route per kind of object for a view that serves them all (it receives ``kind``),
    named ``<kind>-<name>`` (an agent's widget routes, older than this helper, are unprefixed)."""
    return [
        path(
            f"{FOLDERS[kind]}/<uuid:public_id>/{route}",
            view,
            {"kind": kind},
            name=name if kind == "agent" and not agent_prefix else f"{kind}-{name}",
        )
        for kind in kinds
    ]


urlpatterns = [
    path("", agents.agent_list, name="agent-list"),
    path("agents/new/", agents.agent_create_view, name="agent-create"),
    path("agents/search/", agent_search.agent_search, name="agent-search"),
    path("agents/<uuid:public_id>/", agents.agent_edit, name="agent-edit"),
    path("agents/<uuid:public_id>/duplicate/", agents.agent_duplicate_view, name="agent-duplicate"),
    path("agents/<uuid:public_id>/delete/", agents.agent_delete_view, name="agent-delete"),
    path("agents/<uuid:public_id>/publish/", agents.agent_publish_view, name="agent-publish"),
    path("agents/<uuid:public_id>/versions/", versions.version_list, name="agent-versions"),
    *per_kind("channels/", publish.publish_page, "publish-page"),
    *per_kind("channels/widget/new/", publish.widget_create, "widget-create", agent_prefix=False),
    *per_kind("channels/widget/", publish.widget_settings, "widget-settings", agent_prefix=False),
    *per_kind("channels/widget/enabled/", publish.widget_enabled, "widget-enabled", agent_prefix=False),
    *per_kind("channels/widget/rotate/", publish.widget_rotate, "widget-rotate", agent_prefix=False),
    *per_kind(
        "channels/widget/identity/rotate/",
        publish.widget_rotate_identity,
        "widget-identity-rotate",
        agent_prefix=False,
    ),
    *per_kind("channels/widget/preview/", publish.widget_preview, "widget-preview", agent_prefix=False),
    *per_kind("publish/api-keys/", api_keys.api_keys_view, "api-keys"),
    *per_kind("publish/api-keys/budget/", api_keys.api_key_budget_view, "api-budget"),
    *per_kind("publish/api-keys/<uuid:key_id>/limit/", api_keys.api_key_limit_view, "api-key-limit"),
    *per_kind("publish/api-keys/<uuid:key_id>/revoke/", api_keys.api_key_revoke_view, "api-key-revoke"),
    path("agents/<uuid:public_id>/versions/diff/", versions.version_diff_view, name="agent-diff"),
    path(
        "agents/<uuid:public_id>/versions/<int:number>/restore/",
        versions.version_restore,
        name="agent-restore",
    ),
    path("tools/", tools.tool_list, name="tool-list"),
    path("tools/new/", tools.tool_create, name="tool-create"),
    path("tools/new/curl/", tools.tool_from_curl, name="tool-from-curl"),
    path("tools/import/openapi/", tools.tool_import_openapi_view, name="tool-import-openapi"),
    path("tools/<uuid:public_id>/", tools.tool_edit, name="tool-edit"),
    path("tools/<uuid:public_id>/try/", tools.tool_try_view, name="tool-try"),
    path("tools/<uuid:public_id>/delete/", tools.tool_delete_view, name="tool-delete"),
    path("agents/<uuid:public_id>/export/", io.agent_export, name="agent-export"),
    path("systems/", systems.system_list, name="system-list"),
    path("systems/new/", systems.system_create, name="system-create"),
    path("systems/<uuid:public_id>/", systems.system_edit, name="system-edit"),
    path("systems/<uuid:public_id>/publish/", systems.system_publish_view, name="system-publish"),
    path("systems/<uuid:public_id>/delete/", systems.system_delete_view, name="system-delete"),
    path("systems/<uuid:public_id>/export/", io.system_export, name="system-export"),
    *per_kind("memory/", memory.memory_list, "memory"),
    *per_kind("memory/<uuid:entry_id>/", memory.memory_entry, "memory-entry"),
    *per_kind("conversations/", owner_view.conversation_list, "conversations"),
    *per_kind("conversations/<uuid:conversation_id>/", owner_view.conversation_detail, "conversation"),
    *per_kind("usage/", owner_view.usage, "usage"),
    path("import/", io.import_view, name="import"),
    path("settings/models/", provider_settings.provider_settings_view, name="provider-settings"),
    path("settings/models/prices/", provider_settings.model_price_view, name="model-price"),
    path(
        "settings/models/prices/remove/", provider_settings.model_price_remove_view, name="model-price-remove"
    ),
    path("agents/<uuid:public_id>/playground/send/", playground.agent_send, name="agent-playground-send"),
    path("systems/<uuid:public_id>/playground/send/", playground.system_send, name="system-playground-send"),
    path("playground/runs/<uuid:run_id>/", playground.run_turn, name="playground-turn"),
    path("playground/runs/<uuid:run_id>/cancel/", playground.run_cancel_view, name="playground-cancel"),
    path("knowledge/", knowledge.knowledge_list, name="knowledge-list"),
    path("knowledge/new/", knowledge.knowledge_create, name="knowledge-create"),
    path("knowledge/<uuid:public_id>/", knowledge.knowledge_detail, name="knowledge-detail"),
    path("knowledge/<uuid:public_id>/upload/", knowledge.knowledge_upload, name="knowledge-upload"),
    path("knowledge/<uuid:public_id>/settings/", knowledge.knowledge_settings, name="knowledge-settings"),
    path("knowledge/<uuid:public_id>/delete/", knowledge.knowledge_delete_view, name="knowledge-delete"),
    path("knowledge/<uuid:public_id>/search/", knowledge.knowledge_search_view, name="knowledge-search"),
    path(
        "knowledge/<uuid:public_id>/documents/<uuid:document_id>/retry/",
        knowledge.document_retry_view,
        name="document-retry",
    ),
    path(
        "knowledge/<uuid:public_id>/documents/<uuid:document_id>/cancel/",
        knowledge.document_cancel_view,
        name="document-cancel",
    ),
    path(
        "knowledge/<uuid:public_id>/documents/<uuid:document_id>/delete/",
        knowledge.document_delete_view,
        name="document-delete",
    ),
    path(
        "knowledge/<uuid:public_id>/documents/<uuid:document_id>/passages/<int:ordinal>/",
        knowledge.passage_view,
        name="knowledge-passage",
    ),
    *per_kind("knowledge/", knowledge.attached_knowledge, "knowledge"),
    path("people/search/", sharing.people_search, name="people-search"),
    path("teams/", teams.teams, name="teams"),
    *per_kind("sharing/", sharing.sharing_panel, "sharing", kinds=SHAREABLE),
    *per_kind("sharing/change/", sharing.sharing_change, "sharing-change", kinds=SHAREABLE),
    *per_kind("sharing/invite/", sharing.sharing_invite, "sharing-invite", kinds=SHAREABLE),
    path("invitations/<str:token>/", sharing.invitation_accept_view, name="invitation-accept"),
]
