"""The knowledge API under ``/api/knowledge/``: bases, documents (upload, status, delete) and search.

The same rules as the builder: staff users, each seeing only the bases they own (superusers
see all); a base someone else owns is a 404. Uploads are multipart with repeated ``files``
and go through the same service (and checks) as the builder's upload form.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from rag.access import has_role, record_deleted, visible_bases
from rag.embeddings import embedding_model_choices
from rag.models import Document, KnowledgeBase
from rag.search import search
from rag.services import (
    KnowledgeInputError,
    document_delete,
    document_from_url,
    document_upload,
    knowledge_base_create,
    knowledge_base_delete,
    knowledge_base_update,
)
from runtime.api.credentials import CachedTokenAuthentication


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    embedding_model = serializers.ChoiceField(choices=embedding_model_choices(), required=False)

    class Meta:
        model = KnowledgeBase
        fields = ["id", "name", "description", "embedding_model", "chunk_size", "chunk_overlap", "created_at"]
        read_only_fields = ["created_at"]


class DocumentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Document
        fields = [
            "id",
            "name",
            "kind",
            "size",
            "sha256",
            "status",
            "progress",
            "error",
            "chunk_count",
            "created_at",
        ]
        read_only_fields = fields


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    top_k = serializers.IntegerField(min_value=1, max_value=50, default=5)


def _bases(request):
    return visible_bases(request.user, KnowledgeBase.objects.all())


def _base(request, base_id, role: str = "viewer") -> KnowledgeBase:
    """The base, if the caller may see it (else 404) and has at least ``role`` on it (else 403)."""
    base = _bases(request).filter(public_id=base_id).first()
    if base is None:
        raise NotFound("No such knowledge base.")
    if role != "viewer" and not has_role(request.user, base, role):
        needed = "editors and owners" if role == "editor" else "owners"
        raise PermissionDenied(
            f"Only {needed} of this knowledge base may do that; ask its owner for the {role} role."
        )
    return base


def _input_error(exc: KnowledgeInputError) -> ValidationError:
    return ValidationError({exc.field: [exc.message]})


class ApiView(APIView):
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]


class KnowledgeBaseListView(ApiView):
    @extend_schema(summary="Your knowledge bases", responses=KnowledgeBaseSerializer(many=True))
    def get(self, request):
        return Response(KnowledgeBaseSerializer(_bases(request), many=True).data)

    @extend_schema(
        summary="Create a knowledge base",
        request=KnowledgeBaseSerializer,
        responses={201: KnowledgeBaseSerializer},
    )
    def post(self, request):
        serializer = KnowledgeBaseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            base = knowledge_base_create(owner=request.user, **serializer.validated_data)
        except KnowledgeInputError as exc:
            raise _input_error(exc) from None
        return Response(KnowledgeBaseSerializer(base).data, status=status.HTTP_201_CREATED)


_SETTINGS = ("name", "description", "embedding_model", "chunk_size", "chunk_overlap")


class KnowledgeBaseDetailView(ApiView):
    @extend_schema(summary="One knowledge base", responses=KnowledgeBaseSerializer)
    def get(self, request, base_id):
        return Response(KnowledgeBaseSerializer(_base(request, base_id)).data)

    @extend_schema(
        summary="Change a knowledge base; a new embedding model, chunk size or overlap indexes every document again",
        request=KnowledgeBaseSerializer,
        responses=KnowledgeBaseSerializer,
    )
    def patch(self, request, base_id):
        base = _base(request, base_id)
        current = KnowledgeBaseSerializer(base).data
        serializer = KnowledgeBaseSerializer(base, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = {key: serializer.validated_data.get(key, current[key]) for key in _SETTINGS}
        try:
            knowledge_base_update(knowledge_base=base, user=request.user, **fields)
        except KnowledgeInputError as exc:
            raise _input_error(exc) from None
        return Response(KnowledgeBaseSerializer(base).data)

    @extend_schema(summary="Delete a knowledge base and its documents", responses={204: None})
    def delete(self, request, base_id):
        base = _base(request, base_id, "owner")
        with transaction.atomic():
            record_deleted(request.user, base)
            knowledge_base_delete(knowledge_base=base)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentListView(ApiView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Documents of a knowledge base, with their indexing status",
        responses=DocumentSerializer(many=True),
    )
    def get(self, request, base_id):
        return Response(DocumentSerializer(_base(request, base_id).documents.all(), many=True).data)

    @extend_schema(
        summary="Upload files (multipart, repeated `files`) or a web page (`url`); each is indexed in the background",
        request={
            "multipart/form-data": inline_serializer(
                "Upload",
                {
                    "files": serializers.ListField(child=serializers.FileField(), required=False),
                    "url": serializers.URLField(required=False, help_text="a web page to fetch and index"),
                },
            )
        },
        responses={201: DocumentSerializer(many=True)},
    )
    def post(self, request, base_id):
        base = _base(request, base_id, "editor")
        uploads = request.FILES.getlist("files")
        url = str(request.data.get("url", "")).strip()
        if not uploads and not url:
            raise ValidationError(
                {"files": ["Send one or more files as multipart `files`, or a web page's address as `url`."]}
            )
        created, errors = [], []
        for upload in uploads:
            try:
                created.append(document_upload(knowledge_base=base, upload=upload, user=request.user))
            except KnowledgeInputError as exc:
                errors.append(exc.message)
        if url:
            try:
                created.append(document_from_url(knowledge_base=base, url=url, user=request.user))
            except KnowledgeInputError as exc:
                errors.append(exc.message)
        if errors and not created:
            raise ValidationError({"url" if url and not uploads else "files": errors})
        body = {"documents": DocumentSerializer(created, many=True).data, "errors": errors}
        return Response(body, status=status.HTTP_201_CREATED)


class DocumentDetailView(ApiView):
    def _document(self, request, base_id, document_id, role: str = "viewer") -> Document:
        document = _base(request, base_id, role).documents.filter(public_id=document_id).first()
        if document is None:
            raise NotFound("No such document.")
        return document

    @extend_schema(summary="A document's indexing status", responses=DocumentSerializer)
    def get(self, request, base_id, document_id):
        return Response(DocumentSerializer(self._document(request, base_id, document_id)).data)

    @extend_schema(summary="Delete a document (its file and passages)", responses={204: None})
    def delete(self, request, base_id, document_id):
        document_delete(document=self._document(request, base_id, document_id, "editor"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SearchView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Hybrid search (vector + full text) in one knowledge base",
        request=SearchSerializer,
        responses=inline_serializer(
            "SearchResult",
            {
                "hits": serializers.ListField(child=serializers.DictField()),
                "elapsed_ms": serializers.FloatField(),
            },
        ),
    )
    def post(self, request, base_id):
        base = _base(request, base_id)
        serializer = SearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = search(
            knowledge_bases=[base],
            query=serializer.validated_data["query"].replace("\x00", ""),
            top_k=serializer.validated_data["top_k"],
        )
        hits = [{**hit.citation(), "text": hit.text} for hit in result.hits]
        return Response({"hits": hits, "elapsed_ms": result.elapsed_ms})
