"""Forms of the knowledge pages (the rules themselves live in rag/services.py)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from builder.models import AgentKnowledge
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


class AgentKnowledgeForm(forms.Form):
    knowledge_bases = forms.ModelMultipleChoiceField(
        queryset=KnowledgeBase.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Agents answer from these and cite the passages they used.",
    )
    mode = forms.ChoiceField(
        label="How the agent uses them",
        choices=[
            ("auto", "Automatic: passages for every user message go into the prompt"),
            ("tool", "Search tool: the model calls search_knowledge when it needs to"),
            ("both", "Both"),
        ],
        initial="auto",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, bases, agent, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["knowledge_bases"].queryset = bases
        links = list(AgentKnowledge.objects.filter(agent=agent).values_list("knowledge_base_id", "mode"))
        self.fields["knowledge_bases"].initial = [pk for pk, _ in links]
        if links:
            self.fields["mode"].initial = links[0][1]
