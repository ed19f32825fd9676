"""Settings: every INTERLOCK_* variable read once, typed; a bad value named with its variable."""

from __future__ import annotations

import dataclasses

import pytest

from interlock.settings import (
    DEFAULT_API_PORT,
    DEFAULT_HOST,
    SERVICE_PORTS,
    Settings,
    SettingsError,
)
from mock_services.runner import DEFAULT_HOST as SERVICES_DEFAULT_HOST
from mock_services.runner import DEFAULT_PORTS as SERVICES_DEFAULT_PORTS


def test_an_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.db_path == "interlock.db"
    assert settings.api_port == DEFAULT_API_PORT == 8700
    assert settings.api_url == "http://127.0.0.1:8700"
    assert dict(settings.service_ports) == {
        "users": 8701,
        "billing": 8702,
        "preferences": 8703,
        "notifications": 8704,
    }
    assert settings.service_urls() == {
        "users": "http://127.0.0.1:8701",
        "billing": "http://127.0.0.1:8702",
        "preferences": "http://127.0.0.1:8703",
        "notifications": "http://127.0.0.1:8704",
    }
    assert settings.uvloop is True
    assert settings.host == DEFAULT_HOST == "127.0.0.1"


def test_the_mock_services_default_to_the_same_ports() -> None:
    assert dict(SERVICE_PORTS) == dict(SERVICES_DEFAULT_PORTS)
    assert DEFAULT_HOST == SERVICES_DEFAULT_HOST


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "INTERLOCK_DB": "/tmp/x.db",
            "INTERLOCK_API_PORT": "9700",
            "INTERLOCK_USERS_PORT": "9701",
            "INTERLOCK_BILLING_PORT": "9702",
            "INTERLOCK_PREFERENCES_PORT": "9703",
            "INTERLOCK_NOTIFICATIONS_PORT": "9704",
            "INTERLOCK_UVLOOP": "0",
        }
    )
    assert settings.db_path == "/tmp/x.db"
    assert settings.api_port == 9700
    assert settings.api_url == "http://127.0.0.1:9700"  # built from the port
    assert dict(settings.service_ports) == {
        "users": 9701,
        "billing": 9702,
        "preferences": 9703,
        "notifications": 9704,
    }
    assert settings.service_urls()["notifications"] == "http://127.0.0.1:9704"
    assert settings.uvloop is False


def test_a_url_wins_over_the_port_it_would_be_built_from() -> None:
    settings = Settings.from_env(
        {
            "INTERLOCK_API_PORT": "9700",
            "INTERLOCK_API_URL": "https://api.example:443",
            "INTERLOCK_BILLING_PORT": "9702",
            "INTERLOCK_BILLING_URL": "http://billing.internal:80",
        }
    )
    assert settings.api_port == 9700  # still what `interlock up` binds
    assert settings.api_url == "https://api.example:443"
    urls = settings.service_urls()
    assert urls["billing"] == "http://billing.internal:80"
    assert urls["users"] == "http://127.0.0.1:8701"


def test_service_urls_on_another_host_keep_the_explicit_ones() -> None:
    settings = Settings.from_env({"INTERLOCK_USERS_URL": "http://users:1"})
    urls = settings.service_urls("10.0.0.5")
    assert urls["users"] == "http://users:1"
    assert urls["billing"] == "http://10.0.0.5:8702"


def test_an_empty_variable_counts_as_unset() -> None:
    empty = dict.fromkeys(("INTERLOCK_API_PORT", "INTERLOCK_API_URL", "INTERLOCK_UVLOOP"), "")
    assert Settings.from_env({**empty, "INTERLOCK_DB": ""}) == Settings()


def test_other_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "API_PORT": "x"}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INTERLOCK_API_PORT", "abc", "a port number 1-65535"),
        ("INTERLOCK_API_PORT", "0", "a port number 1-65535"),
        ("INTERLOCK_API_PORT", "65536", "a port number 1-65535"),
        ("INTERLOCK_API_PORT", "-1", "a port number 1-65535"),
        ("INTERLOCK_API_PORT", " 8700", "a port number 1-65535"),
        ("INTERLOCK_USERS_PORT", "87.01", "a port number 1-65535"),
        ("INTERLOCK_NOTIFICATIONS_PORT", "٨٧٠٤", "a port number 1-65535"),
        ("INTERLOCK_API_URL", "localhost:8700", "an http:// or https:// URL"),
        ("INTERLOCK_API_URL", "ftp://example.com", "an http:// or https:// URL"),
        ("INTERLOCK_BILLING_URL", "http://", "an http:// or https:// URL"),
        ("INTERLOCK_PREFERENCES_URL", "http://[::1", "an http:// or https:// URL"),
        ("INTERLOCK_UVLOOP", "yes", "0 or 1"),
        ("INTERLOCK_UVLOOP", "false", "0 or 1"),
        *(
            (
                "INTERLOCK_CLIENT_TIMEOUT_S",
                bad,
                "a number of seconds, more than 0 and at most 86400",
            )
            for bad in ("soon", "0", "-1", "nan", "inf", "86401")
        ),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert str(info.value) == f"{variable} must be {expected}, got {value!r}"
    assert (info.value.variable, info.value.value, info.value.expected) == (
        variable,
        value,
        expected,
    )


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.api_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.service_ports["users"] = 1  # type: ignore[index]


def test_the_client_timeout_is_read_in_seconds() -> None:
    assert Settings.from_env({}).client_timeout_s == 30
    assert Settings.from_env({"INTERLOCK_CLIENT_TIMEOUT_S": "2.5"}).client_timeout_s == 2.5
