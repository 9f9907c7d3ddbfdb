"""create_app wires everything explicitly: nothing depends on a blueprint being registered."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import tickstock.app
from tickstock.app import BLUEPRINTS, create_app

PACKAGE = Path(tickstock.app.__file__).parent


async def test_validation_errors_do_not_depend_on_the_docs_blueprint(
    settings_overrides: dict[str, Any],
    auth_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_docs = tuple(bp for bp in BLUEPRINTS if bp.name != "docs")
    assert len(without_docs) == len(BLUEPRINTS) - 1
    monkeypatch.setattr(tickstock.app, "BLUEPRINTS", without_docs)
    app = create_app(settings_overrides)
    async with app.test_app():
        client = app.test_client()
        response = await client.get("/api/patterns?limit=0", headers=auth_headers)
        assert response.status_code == 400
        body = await response.get_json()
        assert (body["status"], body["code"]) == ("error", "validation_error")
        assert body["message"].startswith("limit:")
        assert (await client.get("/openapi.json", headers=auth_headers)).status_code == 404


def test_every_blueprint_module_is_registered() -> None:
    modules = {p.stem for p in (PACKAGE / "blueprints").glob("*.py") if p.stem != "__init__"}
    registered = {bp.import_name.rsplit(".", 1)[-1] for bp in BLUEPRINTS}
    assert registered == modules


@pytest.mark.parametrize("area", ["extensions", "realtime", "queries"])
def test_no_extension_imports_a_blueprint(area: str) -> None:
    for path in sorted((PACKAGE / area).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert not name.startswith("tickstock.blueprints"), f"{path.name} imports {name}"
