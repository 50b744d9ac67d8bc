"""The OpenAPI document: every operation documents what it answers.

A JSON answer has a schema with structure (a model, or a list of models), not a bare
object; an HTML page, a CSV dictionary, a JSON-LD export or a download declares its
media type; 204 answers have no body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from jupyterlab_hdh.api.app import create_app


def _structured(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """A schema that says what is in the answer (a model, a list of them, or one of them)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _structured(components.get(name, {}), components)
    if schema.get("properties"):
        return True
    if schema.get("type") == "array":
        return _structured(schema.get("items") or {}, components)
    if "anyOf" in schema:
        branches = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return bool(branches) and all(_structured(s, components) for s in branches)
    return False


def undocumented(doc: dict[str, Any]) -> list[str]:
    """``METHOD path: why`` for each operation without a documented 2xx answer."""
    components = doc.get("components", {}).get("schemas", {})
    out = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            answers = {c: r for c, r in op.get("responses", {}).items() if str(c).startswith("2")}
            if not answers:
                out.append(f"{method.upper()} {path}: no 2xx response")
            for code, response in answers.items():
                if str(code) == "204":
                    continue
                content = response.get("content") or {}
                if not content:
                    out.append(f"{method.upper()} {path}: {code} has no content")
                for media, body in content.items():
                    if media == "application/json" and not _structured(
                        body.get("schema") or {}, components
                    ):
                        out.append(f"{method.upper()} {path}: {code} {media} has no schema")
    return out


def test_every_operation_has_a_response_schema(hub) -> None:
    doc = create_app(hub.data_dir, bridge_token="t" * 64).openapi()
    assert len([op for ops in doc["paths"].values() for op in ops]) >= 50
    missing = undocumented(doc)
    assert not missing, "operations without a response schema:\n" + "\n".join(missing)


def test_the_check_finds_a_route_without_one() -> None:
    router = APIRouter()

    @router.get("/free")
    def free() -> dict[str, Any]:
        return {}

    @router.get("/typed")
    def typed() -> list[dict[str, int]]:
        return []

    app = FastAPI()
    app.include_router(router)
    missing = undocumented(app.openapi())
    assert missing == [
        "GET /free: 200 application/json has no schema",
        "GET /typed: 200 application/json has no schema",
    ]
