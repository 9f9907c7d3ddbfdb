"""`.env.example` documents every setting, with its real default."""

from __future__ import annotations

from pathlib import Path

from tickstock.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _documented() -> dict[str, str]:
    entries = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("TICKSTOCK_"):
            key, _, value = line.partition("=")
            entries[key.removeprefix("TICKSTOCK_").lower()] = value
    return entries


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented()
    assert set(documented) == set(Settings.model_fields)
    defaults = Settings.model_construct()
    for name, value in documented.items():
        default = getattr(defaults, name)
        if isinstance(default, list):
            default = ",".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        elif default is None:
            default = ""
        assert value == str(default), name
