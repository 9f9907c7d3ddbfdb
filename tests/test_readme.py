"""What the README tells a new user to run is what works."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import metadata
from pathlib import Path

from packaging.requirements import Requirement

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_client_install_line_names_extras_that_exist() -> None:
    (line,) = [
        line
        for line in README.read_text().splitlines()
        if line.startswith("python3 -m venv client")
    ]
    install = shlex.split(line.split("&&", 1)[1])
    assert install[:2] == ["client/bin/pip", "install"]
    for spec in install[2:]:
        requirement = Requirement(spec)
        provided = set(metadata(requirement.name).get_all("Provides-Extra") or [])
        for extra in requirement.extras:
            # Spelled as the package spells it: pip 23 warns "does not provide the extra
            # 'asyncio_client'" and installs without it when the spelling differs.
            assert extra in provided, (spec, sorted(provided))


def test_the_readme_says_the_demo_user_is_an_admin_and_what_the_first_start_does() -> None:
    text = README.read_text()
    assert re.search(r"demo login is an \*\*admin\*\*", text)
    assert "npm ci" in text and "The whole suite takes about" in text
