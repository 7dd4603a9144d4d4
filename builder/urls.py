from __future__ import annotations

from django.urls import path

from builder.views import (
    agent_search,
    agents,
    io,
    memory,
    playground,
    provider_settings,
    systems,
    tools,
    versions,
)

app_name = "builder"

urlpatterns = [
    path("", agents.agent_list, name="agent-list"),
    path("agents/new/", agents.agent_create_view, name="agent-create"),
    path("agents/search/", agent_search.agent_search, name="agent-search"),
    path("agents/<uuid:public_id>/", agents.agent_edit, name="agent-edit"),
    path("agents/<uuid:public_id>/duplicate/", agents.agent_duplicate_view, name="agent-duplicate"),
    path("agents/<uuid:public_id>/delete/", agents.agent_delete_view, name="agent-delete"),
    path("agents/<uuid:public_id>/publish/", agents.agent_publish_view, name="agent-publish"),
    path("agents/<uuid:public_id>/versions/", versions.version_list, name="agent-versions"),
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
    path("agents/<uuid:public_id>/memory/", memory.memory_list, {"kind": "agent"}, name="agent-memory"),
    path(
        "agents/<uuid:public_id>/memory/<uuid:entry_id>/",
        memory.memory_entry,
        {"kind": "agent"},
        name="agent-memory-entry",
    ),
    path("systems/", systems.system_list, name="system-list"),
    path("systems/new/", systems.system_create, name="system-create"),
    path("systems/<uuid:public_id>/", systems.system_edit, name="system-edit"),
    path("systems/<uuid:public_id>/publish/", systems.system_publish_view, name="system-publish"),
    path("systems/<uuid:public_id>/delete/", systems.system_delete_view, name="system-delete"),
    path("systems/<uuid:public_id>/export/", io.system_export, name="system-export"),
    path("systems/<uuid:public_id>/memory/", memory.memory_list, {"kind": "system"}, name="system-memory"),
    path(
        "systems/<uuid:public_id>/memory/<uuid:entry_id>/",
        memory.memory_entry,
        {"kind": "system"},
        name="system-memory-entry",
    ),
    path("import/", io.import_view, name="import"),
    path("settings/models/", provider_settings.provider_settings_view, name="provider-settings"),
    path("agents/<uuid:public_id>/playground/send/", playground.agent_send, name="agent-playground-send"),
    path("systems/<uuid:public_id>/playground/send/", playground.system_send, name="system-playground-send"),
    path("playground/runs/<uuid:run_id>/", playground.run_turn, name="playground-turn"),
    path("playground/runs/<uuid:run_id>/cancel/", playground.run_cancel_view, name="playground-cancel"),
]
