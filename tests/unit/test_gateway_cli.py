"""``asynctask-gateway``'s flags become its settings."""

from __future__ import annotations

import pytest

from asynctask_operator.gateway.cli import parser, settings_of
from asynctask_operator.gateway.settings import GatewaySettings


def test_the_defaults_are_the_settings_defaults() -> None:
    assert settings_of(parser().parse_args([])) == GatewaySettings()


def test_every_flag_reaches_its_setting() -> None:
    args = parser().parse_args(
        ["-n", "a", "--namespace", "b", "--kubeconfig", "k", "--context", "c", "--host", "127.0.0.1", "--port", "9",
         "--max-body-bytes", "1024", "--rate-limit", "2.5", "--rate-burst", "3", "--allow-anonymous",
         "--trusted-header", "X-User", "--trusted-groups-header", "X-Groups", "--cors-origin", "https://a",
         "--cloudevent-type", "order.created=fulfil", "--keepalive", "5", "--no-console", "--session-hours", "2"]
    )  # fmt: skip
    assert settings_of(args) == GatewaySettings(
        namespaces=("a", "b"), kubeconfig="k", context="c", host="127.0.0.1", port=9, max_body_bytes=1024,
        rate_limit=2.5, rate_burst=3, allow_anonymous=True, trusted_header="X-User",
        trusted_groups_header="X-Groups", cors_origins=("https://a",),
        cloudevent_types=(("order.created", "fulfil"),), keepalive_seconds=5.0, console=False, session_seconds=7200.0,
    )  # fmt: skip


def test_keepalive_is_never_longer_than_15_seconds() -> None:
    assert settings_of(parser().parse_args(["--keepalive", "60"])).keepalive_seconds == 15.0


@pytest.mark.parametrize("bad", ["order.created", "=fulfil", "order.created="])
def test_a_cloudevent_mapping_needs_both_sides(bad: str) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--cloudevent-type", bad])
