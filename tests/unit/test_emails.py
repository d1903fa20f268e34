"""One rule for email addresses, for the admin command line and the dashboard alike."""

from __future__ import annotations

import pytest

from konvrt.accounts import normalize_email
from konvrt.errors import InvalidField


def test_addresses_are_stored_trimmed_and_lower_case() -> None:
    assert normalize_email("  Maria@Example.COM ") == "maria@example.com"


@pytest.mark.parametrize(
    "bad", ["", "maria", "@example.com", "maria@", "maria@localhost", "ma ria@example.com", "a\x01b@example.com"]
)
def test_what_is_not_an_address_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidField) as info:
        normalize_email(bad)
    assert info.value.field == "email"
