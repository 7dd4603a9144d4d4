"""Unfold admin for knowledge: bases and documents, each staff user seeing only their own.

Documents are read-only here (uploads go through the builder, which checks them); the
retry action calls the same service as the builder's Retry button.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from rag.access import has_role, record_deleted, visible_bases
from rag.models import Document, DocumentStatus, KnowledgeBase
from rag.services import KnowledgeInputError, document_retry, knowledge_base_delete


def _own(request: HttpRequest, queryset: QuerySet, owner_field: str) -> QuerySet:
    """Rows of bases the user may see, whoever shared them (``rag.access``)."""
    return visible_bases(request.user, queryset, owner_field=owner_field)


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(ModelAdmin):
    list_display = ["name", "owner", "embedding_model", "chunk_size", "chunk_overlap", "created_at"]
    search_fields = ["name", "description"]
    list_select_related = ["owner"]
    readonly_fields = ["public_id", "embedding_model", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return _own(request, super().get_queryset(request), "owner")

    # Django's model permissions still apply; the role on the base narrows them further.
    def has_change_permission(self, request: HttpRequest, obj: KnowledgeBase | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or has_role(request.user, obj, "editor"))

    def has_delete_permission(self, request: HttpRequest, obj: KnowledgeBase | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or has_role(request.user, obj, "owner"))

    # Deleting here is the same service as everywhere: stored files removed after the commit,
    # indexing runs cancelled, and the deletion in the audit log.
    def delete_model(self, request: HttpRequest, obj: KnowledgeBase) -> None:
        with transaction.atomic():
            record_deleted(request.user, obj)
            knowledge_base_delete(knowledge_base=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for base in queryset:
            self.delete_model(request, base)


_BADGES = {
    DocumentStatus.READY: "success",
    DocumentStatus.FAILED: "danger",
    DocumentStatus.STORED: "info",
    DocumentStatus.EXTRACTING: "warning",
    DocumentStatus.CHUNKING: "warning",
    DocumentStatus.EMBEDDING: "warning",
}


@admin.register(Document)
class DocumentAdmin(ModelAdmin):
    list_display = ["name", "knowledge_base", "kind", "size", "status_badge", "chunk_count", "updated_at"]
    list_filter = ["status", "kind"]
    search_fields = ["name", "sha256"]
    list_select_related = ["knowledge_base"]
    actions = ["retry_documents"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return _own(request, super().get_queryset(request), "knowledge_base__owner")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @display(description="Status", label=_BADGES)
    def status_badge(self, obj: Document) -> str:
        return obj.status

    @action(description="Index again", permissions=["view"])
    def retry_documents(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            if not has_role(request.user, document.knowledge_base, "editor"):
                self.message_user(
                    request, f"{document.name}: only editors may index it again.", level="warning"
                )
                continue
            try:
                document_retry(document=document, user=request.user)
                self.message_user(request, f"{document.name}: queued for indexing.")
            except KnowledgeInputError as exc:
                self.message_user(request, exc.message, level="warning")
