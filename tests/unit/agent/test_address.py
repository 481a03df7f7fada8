"""The agent's --advertise-address: its default and what it accepts."""

from __future__ import annotations

import pytest

from agent.address import route_address, validate_address

pytestmark = pytest.mark.unit


def test_the_default_is_the_hosts_address_on_the_route_to_the_controller():
    # A UDP connect picks the route without sending anything: loopback for a loopback controller.
    assert route_address("127.0.0.1:50051") == "127.0.0.1"
    assert route_address("127.0.0.5:50051").startswith("127.")


@pytest.mark.parametrize("value", ["10.0.0.7", "node-7.example.org", "::1", " 192.168.1.2 "])
def test_addresses_and_host_names_are_accepted(value):  # noqa: ANN001
    assert validate_address(value) == value.strip()


@pytest.mark.parametrize("value", ["", "a b", "x" * 300, "host;rm"])
def test_anything_else_is_refused_naming_the_flag(value):  # noqa: ANN001
    with pytest.raises(ValueError, match="--advertise-address"):
        validate_address(value)
