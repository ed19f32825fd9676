"""The runner (ports, clean stop, ``python -m mock_services``) and the Faker payloads."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from mock_services.errors import PortInUseError
from mock_services.payloads import RegistrationFaker
from mock_services.runner import start_services
from tests.mock_services.conftest import Api


async def test_a_taken_port_is_a_clear_error_and_nothing_is_left_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"billing: 127.0.0.1:{port} is already in use"):
            await start_services({"users": 0, "billing": port})


async def test_unknown_service_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        await start_services({"payments": 0})


async def test_stop_frees_the_ports() -> None:
    running = await start_services({"users": 0})
    port = int(running.urls["users"].rsplit(":", 1)[1])
    await running.stop()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_faker_is_seeded_and_emails_unique() -> None:
    first = [RegistrationFaker(5).registration() for _ in range(1)]
    batch_a = RegistrationFaker(5)
    batch_b = RegistrationFaker(5)
    a = [batch_a.registration() for _ in range(50)]
    assert a == [batch_b.registration() for _ in range(50)]
    assert a[0] == first[0]
    assert len({r["user_info"]["email"] for r in a}) == 50
    assert {r["user_info"]["plan"] for r in a} == {"free", "pro", "enterprise"}
    assert a != [RegistrationFaker(6).registration() for _ in range(50)]


async def test_faker_payloads_are_accepted_by_the_services(api: Api) -> None:
    fake = RegistrationFaker(11)
    for _ in range(20):
        context = fake.registration()
        info = context["user_info"]
        status, user = await api.call("POST", "users", "/users", dict(info.items()))
        assert status == 201, user
        status, profile = await api.call(
            "POST",
            "billing",
            "/profiles",
            {
                "user_id": user["id"],
                "plan": info["plan"],
                "referral_code": info.get("referral_code"),
                **context["billing_info"],
            },
        )
        assert status == 201, profile
        status, prefs = await api.call(
            "POST",
            "preferences",
            "/preferences",
            {"user_id": user["id"], "preferences": context["preferences"]},
        )
        assert status == 201, prefs


@pytest.mark.slow
def test_python_m_mock_services_serves_until_sigterm() -> None:
    ports = [f"--{s}-port=0" for s in ("users", "billing", "preferences", "notifications")]
    with subprocess.Popen(
        [sys.executable, "-m", "mock_services", *ports],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    ) as proc:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        assert set(urls) == {"users", "billing", "preferences", "notifications"}
        with urllib.request.urlopen(urls["users"] + "/users", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
