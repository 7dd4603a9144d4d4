"""Knowledge pages: bases, uploads with live status, retry/cancel/delete, a retrieval test, passages."""

from __future__ import annotations

from django.contrib import messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builder.access import (
    attach_roles,
    get_document_for_user,
    get_knowledge_base_for_user,
    get_shareable_for_user,
    refusal,
    shared_with,
    visible_to,
)
from builder.forms import apply_errors
from builder.knowledge_forms import KnowledgeAttachForm, KnowledgeBaseForm
from builder.schema import ConfigError
from builder.services.knowledge import knowledge_attach, knowledge_base_remove, knowledge_links
from builder.views.common import go, page, refused, staff_view
from rag.models import TERMINAL_STATUSES, DocumentStatus, KnowledgeBase
from rag.search import search
from rag.services import (
    INDEX_SETTINGS,
    KnowledgeInputError,
    document_cancel,
    document_delete,
    document_from_url,
    document_retry,
    document_upload,
    knowledge_base_create,
    knowledge_base_update,
)

MAX_QUESTION = 2000
DOCUMENTS_PER_PAGE = 50


def _ctx(**extra) -> dict:
    return {"section": "knowledge"} | extra


@staff_view
@require_GET
def knowledge_list(request: HttpRequest) -> HttpResponse:
    shared = request.GET.get("shared") == "1"
    rows = shared_with if shared else visible_to
    bases = rows(request.user, KnowledgeBase.objects.all()).annotate(
        document_count=Count("documents"),
        ready_count=Count("documents", filter=Q(documents__status=DocumentStatus.READY)),
    )
    context = _ctx(bases=attach_roles(request.user, list(bases)), shared=shared, title="Knowledge")
    return page(request, "builder/knowledge_list.html", context)


@staff_view
@require_http_methods(["GET", "POST"])
def knowledge_create(request: HttpRequest) -> HttpResponse:
    form = KnowledgeBaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            base = knowledge_base_create(owner=request.user, **form.cleaned_data)
        except KnowledgeInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Created {base.name}. Upload documents to it below.")
            return go(request, reverse("builder:knowledge-detail", args=[base.public_id]))
    context = _ctx(form=form, title="New knowledge base")
    return page(request, "builder/knowledge_form.html", context, status=422 if form.errors else 200)


@staff_view
@require_http_methods(["GET", "POST"])
def knowledge_settings(request: HttpRequest, public_id: str) -> HttpResponse:
    base, perms = get_knowledge_base_for_user(request.user, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, base, "edit"))
    initial = {key: getattr(base, key) for key in ("name", "description", *INDEX_SETTINGS)}
    form = KnowledgeBaseForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            requeued = knowledge_base_update(knowledge_base=base, user=request.user, **form.cleaned_data)
        except KnowledgeInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            again = f" Indexing {requeued} document{'s' if requeued != 1 else ''} again." if requeued else ""
            messages.success(request, f"Saved {base.name}.{again}")
            return go(request, reverse("builder:knowledge-detail", args=[base.public_id]))
    context = _ctx(
        form=form, base=base, document_count=base.documents.count(), title=f"Settings of {base.name}"
    )
    return page(request, "builder/knowledge_form.html", context, status=422 if form.errors else 200)


def _detail_context(request: HttpRequest, base: KnowledgeBase, perms, **extra) -> dict:
    # a page of documents, newest first: a base of 500 documents took 130 ms to render whole
    page_obj = Paginator(base.documents.all(), DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return _ctx(
        base=base,
        perms=perms,
        documents=page_obj.object_list,
        page_obj=page_obj,
        # the list refreshes itself while any document, on any page, is being indexed
        indexing=base.documents.exclude(status__in=TERMINAL_STATUSES).exists(),
        title=base.name,
        sharing_url=reverse("builder:knowledge-sharing", args=[base.public_id]),
        **extra,
    )


@staff_view
@require_GET
def knowledge_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    base, perms = get_knowledge_base_for_user(request.user, public_id)
    context = _detail_context(request, base, perms)
    return page(request, "builder/knowledge_detail.html", context, partial="documents")


@staff_view
@require_POST
def knowledge_upload(request: HttpRequest, public_id: str) -> HttpResponse:
    base, perms = get_knowledge_base_for_user(request.user, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, base, "edit"))
    uploads = request.FILES.getlist("files")
    pasted = request.POST.get("text", "").strip()
    if pasted:
        title = request.POST.get("title", "").strip() or "Pasted text"
        uploads.append(SimpleUploadedFile(f"{title[:180]}.txt", pasted.encode()))
    url = request.POST.get("url", "").strip()
    errors: list[str] = []
    added: list[str] = []
    url_error = ""
    if not uploads and not url:
        errors.append(
            "Files: choose one or more files to upload, paste some text, or give a web page's address."
        )
    for upload in uploads:
        try:
            added.append(document_upload(knowledge_base=base, upload=upload, user=request.user).name)
        except KnowledgeInputError as exc:
            errors.append(exc.message)
    if url:
        try:
            added.append(document_from_url(knowledge_base=base, url=url, user=request.user).name)
            url = ""
        except KnowledgeInputError as exc:
            url_error = exc.message
            errors.append(exc.message)
    context = _detail_context(
        request, base, perms, upload_errors=errors, uploaded=added, url_error=url_error, url_value=url
    )
    status = 422 if errors and not added else 200
    return page(request, "builder/knowledge_detail.html", context, partial="upload-result", status=status)


@staff_view
@require_POST
def knowledge_delete_view(request: HttpRequest, public_id: str) -> HttpResponse:
    base, perms = get_knowledge_base_for_user(request.user, public_id)
    if not perms.delete:
        return refused(request, refusal(perms, base, "delete"))
    name = base.name
    knowledge_base_remove(knowledge_base=base, user=request.user)
    messages.success(request, f"Deleted {name} and its documents.")
    return go(request, reverse("builder:knowledge-list"))


def _document_action(request: HttpRequest, public_id: str, document_id: str, action) -> HttpResponse:
    document, perms = get_document_for_user(request.user, public_id, document_id)
    base = document.knowledge_base
    if not perms.edit:
        return refused(request, refusal(perms, base, "edit"))
    error = ""
    try:
        action(document)
    except KnowledgeInputError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            messages.error(request, error)
        return go(request, reverse("builder:knowledge-detail", args=[base.public_id]))
    context = _detail_context(request, base, perms, document_error=error)
    return page(request, "builder/knowledge_detail.html", context, partial="documents")


@staff_view
@require_POST
def document_retry_view(request: HttpRequest, public_id: str, document_id: str) -> HttpResponse:
    return _document_action(
        request, public_id, document_id, lambda d: document_retry(document=d, user=request.user)
    )


@staff_view
@require_POST
def document_cancel_view(request: HttpRequest, public_id: str, document_id: str) -> HttpResponse:
    return _document_action(request, public_id, document_id, lambda d: document_cancel(document=d))


@staff_view
@require_POST
def document_delete_view(request: HttpRequest, public_id: str, document_id: str) -> HttpResponse:
    return _document_action(request, public_id, document_id, lambda d: document_delete(document=d))


@staff_view
@require_GET
def knowledge_search_view(request: HttpRequest, public_id: str) -> HttpResponse:
    base, perms = get_knowledge_base_for_user(request.user, public_id)
    question = request.GET.get("q", "").replace("\x00", "").strip()[:MAX_QUESTION]
    result = search(knowledge_bases=[base], query=question, top_k=10) if question else None
    context = _ctx(base=base, question=question, result=result, title=f"Test retrieval: {base.name}")
    return page(request, "builder/knowledge_search.html", context, partial="results")


@staff_view
@require_GET
def passage_view(request: HttpRequest, public_id: str, document_id: str, ordinal: int) -> HttpResponse:
    document, _perms = get_document_for_user(request.user, public_id, document_id)
    chunks = list(document.chunks.filter(ordinal__gte=max(0, ordinal - 1), ordinal__lte=ordinal + 1))
    if not any(c.ordinal == ordinal for c in chunks):
        raise Http404("This passage no longer exists (the document was indexed again).")
    context = _ctx(
        base=document.knowledge_base, document=document, chunks=chunks, ordinal=ordinal, title=document.name
    )
    return page(request, "builder/knowledge_passage.html", context)


@staff_view
@require_http_methods(["GET", "POST"])
def attached_knowledge(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """The knowledge bases an agent or a system (``kind``) uses. Editors of it choose among the
    bases they can see; bases attached by someone else that they cannot see stay attached."""
    target, perms = get_shareable_for_user(request.user, kind, public_id)
    if request.method == "POST" and not perms.edit:
        return refused(request, refusal(perms, target, "edit"))
    bases = visible_to(request.user, KnowledgeBase.objects.all())
    links = knowledge_links(target)
    seen = set(bases.values_list("pk", flat=True))
    form = KnowledgeAttachForm(
        request.POST or None, bases=bases, links=[link for link in links if link.knowledge_base_id in seen]
    )
    url = reverse(f"builder:{kind}-knowledge", args=[target.public_id])
    if request.method == "POST" and form.is_valid():
        try:
            chosen = knowledge_attach(target=target, user=request.user, **form.cleaned_data)
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            names = ", ".join(b.name for b in chosen) or "no knowledge base"
            messages.success(request, f"{target.name} now uses {names}.")
            return go(request, url)
    context = _ctx(
        section=f"{kind}s",  # the tab of the agent or system it belongs to
        target=target,
        kind=kind,
        kind_label=kind,
        edit_url=reverse(f"builder:{kind}-edit", args=[target.public_id]),
        action=url,
        perms=perms,
        form=form,
        has_bases=bases.exists(),
        hidden_count=sum(1 for link in links if link.knowledge_base_id not in seen),
        title=f"Knowledge for {target.name}",
    )
    return page(request, "builder/attached_knowledge.html", context, status=422 if form.errors else 200)
