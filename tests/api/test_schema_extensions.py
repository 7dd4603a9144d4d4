"""The schema endpoint does not race on a fresh server: extension targets are resolved up front."""

from __future__ import annotations

from django.urls import get_resolver
from drf_spectacular.plumbing import OpenApiGeneratorExtension


def _all_extensions():
    pending = list(OpenApiGeneratorExtension.__subclasses__())
    while pending:
        extension = pending.pop()
        pending.extend(extension.__subclasses__())
        yield extension


def test_no_extension_target_is_left_to_resolve_during_a_request():
    assert get_resolver().url_patterns  # the URLconf is loaded, as before any request is served
    unresolved = [e.__name__ for e in _all_extensions() if isinstance(e.target_class, str)]
    # drf-spectacular resolves a dotted path on first use; two first requests at once made one a 500
    assert unresolved == []
