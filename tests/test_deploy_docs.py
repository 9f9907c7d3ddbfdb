"""docs/DEPLOYMENT.md shows the nginx and hypercorn files the deploy suite runs, byte for byte.

The files live in docs/deploy/; tests/deploy runs them (nginx with only the addresses, ports,
host name, certificate and monitoring network substituted), so the documented configuration is
the tested one.
"""

from __future__ import annotations

import re

from tests.support.env import ROOT

DEPLOYMENT = ROOT / "docs" / "DEPLOYMENT.md"
NGINX_CONF = ROOT / "docs" / "deploy" / "nginx.conf"
HYPERCORN_TOML = ROOT / "docs" / "deploy" / "hypercorn.toml"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DEPLOYMENT.read_text(), re.M | re.S)


def test_the_nginx_configuration_shown_is_the_tested_file() -> None:
    assert _blocks("nginx") == [NGINX_CONF.read_text()]


def test_the_hypercorn_configuration_shown_is_the_tested_file() -> None:
    assert _blocks("toml") == [HYPERCORN_TOML.read_text()]


def test_no_location_sets_headers_of_its_own() -> None:
    """A location with any proxy_set_header inherits none of the server's: Host and the
    forwarding headers would be lost there."""
    depth, location_depth = 0, None
    for number, raw in enumerate(NGINX_CONF.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("location ") and line.endswith("{"):
            location_depth = depth
        if location_depth is not None:
            assert not line.startswith("proxy_set_header"), f"nginx.conf:{number}: {raw}"
        depth += line.count("{") - line.count("}")
        if location_depth is not None and depth <= location_depth:
            location_depth = None
    assert depth == 0
