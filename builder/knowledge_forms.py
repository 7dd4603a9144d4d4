"""Forms of the knowledge pages (the rules themselves live in rag/services.py)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from rag.embeddings import embedding_model_choices
from rag.models import KnowledgeBase


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"class": "b-input"}))
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"class": "b-input", "rows": 2})
    )
    embedding_model = forms.ChoiceField(
        choices=embedding_model_choices,
        help_text="Changing it later indexes every document again (vectors of two models cannot be compared).",
        widget=forms.Select(attrs={"class": "b-input"}),
    )
    chunk_size = forms.IntegerField(
        min_value=32, max_value=4000, initial=300, help_text="Tokens (words and punctuation) per passage.",
        widget=forms.NumberInput(attrs={"class": "b-input"}),
    )  # fmt: skip
    chunk_overlap = forms.IntegerField(
        min_value=0, max_value=2000, initial=40, help_text="Tokens repeated between neighbouring passages.",
        widget=forms.NumberInput(attrs={"class": "b-input"}),
    )  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "embedding_model" not in self.initial:
            self.fields["embedding_model"].initial = settings.RAG_DEFAULT_EMBEDDING_MODEL


class KnowledgeAttachForm(forms.Form):
    """Which knowledge bases an agent or a system uses, and how (the same form for both).

    Ranges are checked by ``builder.services.knowledge`` (one place for the rules), so a wrong
    value reaches the server and comes back with its message next to the field."""

    knowledge_bases = forms.ModelMultipleChoiceField(
        queryset=KnowledgeBase.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Answers come from these, citing the passages used.",
        error_messages={
            "invalid_choice": "You cannot see a knowledge base with the id %(value)s; ask its owner to share it "
            "with you, or untick it."
        },
    )
    mode = forms.ChoiceField(
        label="How they are used",
        choices=[
            ("auto", "Automatic: passages for every user message go into the prompt"),
            ("tool", "Search tool: the model calls search_knowledge when it needs to"),
            ("both", "Both"),
        ],
        initial="auto",
        widget=forms.RadioSelect,
    )
    top_k = forms.IntegerField(
        label="Passages per question",
        initial=4,
        help_text="How many passages (top-k) are retrieved for each question, 1 to 20.",
        widget=forms.NumberInput(attrs={"class": "b-input", "step": 1}),
    )
    score_threshold = forms.FloatField(
        label="Minimum similarity",
        initial=0.0,
        help_text="0 to 1: passages whose meaning is less similar to the question are left out "
        "(0 keeps all). Test retrieval on a knowledge base shows each passage's vector score.",
        widget=forms.NumberInput(attrs={"class": "b-input", "step": "any"}),
    )

    def __init__(self, *args, bases, links, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["knowledge_bases"].queryset = bases
        self.fields["knowledge_bases"].initial = [link.knowledge_base_id for link in links]
        if links:
            # one setting for all the bases on the form; stored per attachment
            self.fields["mode"].initial = links[0].mode
            self.fields["top_k"].initial = links[0].top_k
            self.fields["score_threshold"].initial = links[0].score_threshold
