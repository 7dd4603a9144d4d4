"""DJANGO_AGENT_RUNTIME is checked at start-up; RUNTIME_REGISTRY entries load in both spellings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from runtime import conf, registry
from runtime.interfaces import EventType
from tests.processes import ROOT


def test_every_seed_key_is_accepted_with_the_seed_defaults():
    config = conf.validate({})
    assert config["QUEUE_BACKEND"] == "postgres"
    assert config["EVENT_BUS_BACKEND"] == "db"
    assert config["MODEL_PROVIDER"] == "openai" and config["DEFAULT_MODEL"] == "gpt-4o"
    assert (config["LEASE_TTL_SECONDS"], config["RUN_TIMEOUT_SECONDS"], config["MAX_RETRIES"]) == (30, 900, 3)
    assert config["RUNTIME_REGISTRY"] == [] and config["ANONYMOUS_SESSION_MODEL"] is None
    assert config["DEBUG_MODE"] is False and config["SWALLOW_EXCEPTIONS"] is True
    assert config["LANGFUSE_ENABLED"] is False and config["REDIS_URL"] is None
    assert config["EVENT_VISIBILITY"]["tool.call"] == "debug"
    assert config["EVENT_VISIBILITY"]["run.started"] == "internal"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"QUEUE_BACKED": "postgres"}, "unknown key(s) QUEUE_BACKED; accepted keys are"),
        ({"LEASE_TTL_SECONDS": "30"}, "['LEASE_TTL_SECONDS'] must be a int, got str '30'"),
        ({"LEASE_TTL_SECONDS": True}, "['LEASE_TTL_SECONDS'] must be a int, got bool"),
        ({"QUEUE_BACKEND": "rabbit"}, "'rabbit' is not accepted; use one of 'postgres', 'redis_streams'"),
        ({"RUN_TIMEOUT_SECONDS": 0}, "['RUN_TIMEOUT_SECONDS'] must be positive"),
        ({"EVENT_VISIBILITY": {"tool.call": "secret"}}, "'secret'; use one of internal, debug, user"),
        ({"QUEUE_BACKEND": "redis_streams"}, "['REDIS_URL'] must be set"),
        ({"RUNTIME_REGISTRY": [""]}, "entries must be strings like 'myapp.agents:register_agents'"),
    ],
)
def test_bad_settings_name_the_key_and_what_is_accepted(raw, message):
    with pytest.raises(ImproperlyConfigured) as err:
        conf.validate(raw)
    assert message in str(err.value)


def test_a_bad_key_stops_start_up_with_that_message():
    code = (
        "import django, os; from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['runtime'], DJANGO_AGENT_RUNTIME={'MAX_RETRY': 3}); django.setup()"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "unknown key(s) MAX_RETRY" in done.stderr


def test_debug_mode_from_configure_env_and_settings(monkeypatch, settings):
    assert not conf.is_debug() and conf.should_swallow_exceptions()
    conf.configure(debug=True)
    assert conf.is_debug() and not conf.should_swallow_exceptions()
    conf.configure(debug=True, swallow_exceptions=True)
    assert conf.is_debug() and conf.should_swallow_exceptions()
    conf.reset()
    monkeypatch.setenv("DJANGO_AGENT_RUNTIME_DEBUG", "1")
    assert conf.is_debug() and not conf.should_swallow_exceptions()
    monkeypatch.delenv("DJANGO_AGENT_RUNTIME_DEBUG")
    settings.DJANGO_AGENT_RUNTIME = {**settings.DJANGO_AGENT_RUNTIME, "SWALLOW_EXCEPTIONS": False}
    assert conf.is_debug()


def test_event_types_cover_the_seed_table():
    seed = {
        "run.started", "run.succeeded", "run.failed", "run.cancelled", "run.timed_out", "run.heartbeat",
        "tool.call", "tool.result", "assistant.message", "assistant.delta", "state.checkpoint", "error",
    }  # fmt: skip
    assert seed <= {e.value for e in EventType}


def _register_probe() -> None:
    from tests.agents import NoopAgent

    class Probe(NoopAgent):
        key = "registry-probe"

    registry.register_runtime(Probe())


@pytest.mark.parametrize("entry", ["tests.runtime.test_conf_and_registry:_register_probe",
                                   "tests.runtime.test_conf_and_registry._register_probe"])  # fmt: skip
def test_registry_entries_in_both_spellings(entry, settings):
    registry.unregister_runtime("registry-probe")
    settings.DJANGO_AGENT_RUNTIME = {**settings.DJANGO_AGENT_RUNTIME, "RUNTIME_REGISTRY": [entry]}
    registry.autodiscover(force=True)
    assert registry.agent_exists("registry-probe")
    registry.unregister_runtime("registry-probe")


def test_a_broken_registry_entry_is_logged_in_production_and_raises_in_debug(settings, caplog):
    settings.DJANGO_AGENT_RUNTIME = {
        **settings.DJANGO_AGENT_RUNTIME,
        "RUNTIME_REGISTRY": ["no_such_module:register"],
    }
    registry.autodiscover(force=True)
    assert "Could not load RUNTIME_REGISTRY entry no_such_module:register" in caplog.text
    conf.configure(debug=True)
    with pytest.raises(ModuleNotFoundError):
        registry.autodiscover(force=True)


def test_the_runtimes_top_level_settings_are_checked_at_start_up(settings):
    conf.validate_settings()  # the project's own settings pass
    assert conf.setting("AGENT_MAX_DEPTH") == settings.AGENT_MAX_DEPTH
    del settings.AGENT_LLM_MODELS
    assert conf.setting("AGENT_LLM_MODELS") == []  # unset: the default
    for name, value, message in [
        ("AGENT_MAX_DEPTH", "deep", "AGENT_MAX_DEPTH must be a whole number, got 'deep'."),
        ("AGENT_SSE_KEEPALIVE_SECONDS", 0, "AGENT_SSE_KEEPALIVE_SECONDS must be above 0, got 0."),
        ("AGENT_LLM_MAX_RETRIES", -1, "AGENT_LLM_MAX_RETRIES must be at least 0, got -1."),
        (
            "AGENT_HTTP_ALLOWED_HOSTS",
            "10.0.0.0/8",
            "AGENT_HTTP_ALLOWED_HOSTS must be a list, got '10.0.0.0/8'.",
        ),
    ]:
        previous = getattr(settings, name, None)
        setattr(settings, name, value)
        with pytest.raises(ImproperlyConfigured) as info:
            conf.validate_settings()
        assert str(info.value) == message
        setattr(settings, name, previous)


def test_runtime_modules_read_django_settings_only_through_conf():
    """One settings surface: a new ``getattr(settings, ...)`` elsewhere belongs in conf.SETTINGS."""
    allowed = {"runtime/conf.py", "runtime/llm/credentials.py"}  # provider keys: settings, then the database
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "runtime").rglob("*.py")
        if "getattr(settings," in path.read_text() and str(path.relative_to(ROOT)) not in allowed
    ]
    assert offenders == []
