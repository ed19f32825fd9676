"""Realistic, seeded registration payloads made with Faker, for tests, the CLI and demos.

The same seed gives the same people in the same order. Emails are unique within one generator
(a running number is part of each), so a batch never collides with itself on the users service.
"""

from __future__ import annotations

import string
from collections import OrderedDict
from typing import Any, Final

from faker import Faker

PLAN_WEIGHTS: Final = OrderedDict([("free", 0.5), ("pro", 0.35), ("enterprise", 0.15)])
SAFE_DOMAINS: Final = ("example.com", "example.org", "example.net")


class RegistrationFaker:
    """Makes registration contexts (the ``user_registration`` input) and service bodies."""

    def __init__(self, seed: int = 0, locale: str = "en_US") -> None:
        self._fake = Faker(locale)
        self._fake.seed_instance(seed)
        self._count = 0

    def registration(self, plan: str | None = None) -> dict[str, Any]:
        """A full context: ``user_info``, ``billing_info`` and ``preferences``."""
        fake = self._fake
        self._count += 1
        first, last = fake.first_name(), fake.last_name()
        chosen = plan or fake.random_element(PLAN_WEIGHTS)
        user_info: dict[str, Any] = {
            "email": self._email(first, last),
            "name": f"{first} {last}",
            "plan": chosen,
            "phone": fake.numerify("+1-###-###-####"),
            "source": fake.random_element(["web", "mobile", "api"]),
        }
        if chosen != "free":
            user_info["company"] = fake.company()
        if fake.random.random() < 0.25:
            user_info["referral_code"] = "REF-" + "".join(
                fake.random_choices(string.ascii_uppercase + string.digits, length=8)
            )
        return {
            "user_info": user_info,
            "billing_info": {
                "payment_method": {
                    "type": "card",
                    "brand": fake.random_element(["visa", "mastercard", "amex"]),
                    "last4": fake.numerify("####"),
                },
                "billing_address": {
                    "street": fake.street_address(),
                    "city": fake.city(),
                    "state": fake.state_abbr(),
                    "zip": fake.zipcode(),
                },
            },
            "preferences": {
                "marketing_emails": fake.pybool(),
                "product_updates": fake.pybool(),
                "newsletter": fake.pybool(),
            },
        }

    def _email(self, first: str, last: str) -> str:
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        return f"{local}.{self._count}@{self._fake.random_element(SAFE_DOMAINS)}"
