"""One error vocabulary: every domain error is an ``HdhError`` with its HTTP status, the API
maps them with one handler and the CLI prints them as one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from jupyterlab_hdh.api.app import create_app
from jupyterlab_hdh.errors import HdhError

#: domain packages whose public exceptions reach a person through the API or the CLI
DOMAIN = ("audit", "catalogue", "data", "egress", "governance", "ingestion", "store")
# (the disclosure checks' own errors, hdh.disclosure's CheckError and TableReadError, belong to
# the in-sandbox package: the offline check turns them into exit code 3 and a JSON line)
#: exceptions that never leave their module's caller (each with why)
INTERNAL = {
    # raised by the schema registry's lookups; callers turn it into an IngestError
    "jupyterlab_hdh.data.snds_schemas.UnknownTableError",
    # one row's problem inside validation; collected into the IngestError report
    "jupyterlab_hdh.data.validate.ValidationError",
    # a quality rule that cannot run; reported inside the quality report
    "jupyterlab_hdh.data.quality.QualityControlError",
}


def _domain_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for pkg in DOMAIN:
        base = importlib.import_module(f"jupyterlab_hdh.{pkg}")
        modules = [base.__name__]
        if hasattr(base, "__path__"):
            prefix = f"{base.__name__}."
            modules += [m.name for m in pkgutil.walk_packages(base.__path__, prefix)]
        for name in modules:
            if "migrations" in name:
                continue
            mod = importlib.import_module(name)
            for attr, obj in vars(mod).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == name
                    and not attr.startswith("_")
                ):
                    found[f"{name}.{attr}"] = obj
    return [cls for key, cls in sorted(found.items()) if key not in INTERNAL]


def test_every_public_domain_error_is_an_hdh_error_with_a_status() -> None:
    classes = _domain_exceptions()
    assert len(classes) > 20
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, HdhError)]
    assert strays == [], "domain errors outside the vocabulary (jupyterlab_hdh/errors.py)"
    for cls in classes:
        assert 400 <= cls.http_status <= 599, cls


def test_statuses_of_the_vocabulary() -> None:
    from jupyterlab_hdh.catalogue.manager import NotInCatalogue
    from jupyterlab_hdh.data.pseudonymise import KeyFileMissingError
    from jupyterlab_hdh.egress.errors import NotAllowed, WrongState
    from jupyterlab_hdh.governance import projects
    from jupyterlab_hdh.ingestion import IngestError

    assert NotInCatalogue("x").http_status == 404
    assert IngestError("x").http_status == 422
    assert KeyFileMissingError("gone").detail() == "pseudonymisation keys unusable: gone"
    assert (NotAllowed.http_status, WrongState.http_status) == (403, 409)
    assert projects.UnknownProject("x").http_status == 404  # a permit refusal, but not found
    assert projects.NotAMember("x").extra() == {"reason": "not_a_member"}
    assert projects.ProjectConflict("x").http_status == 409


def test_the_api_has_one_handler_for_every_domain_error(hub: Any) -> None:
    app = create_app(hub.data_dir)
    domain = [k for k in app.exception_handlers if isinstance(k, type) and issubclass(k, HdhError)]
    assert domain == [HdhError]


@pytest.mark.parametrize("status", [403, 404, 409, 422, 503])
def test_a_domain_error_reaches_the_api_caller_as_its_status_and_one_line(
    hub: Any, status: int
) -> None:
    class Refused(HdhError):
        http_status = status

        def extra(self) -> dict[str, Any]:
            return {"reason": "because"}

    app = create_app(hub.data_dir)

    @app.get("/api/test-refusal")
    def refuse() -> None:
        raise Refused("no, and here is why")

    with TestClient(app) as client:
        r = client.get("/api/test-refusal")
    assert r.status_code == status
    assert r.json() == {"detail": "no, and here is why", "reason": "because"}


def test_the_cli_prints_a_domain_error_as_one_line() -> None:
    from jupyterlab_hdh.cli import HdhGroup

    @click.group(cls=HdhGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise HdhError("the thing is wrong: do this instead")

    out = CliRunner().invoke(group, ["fail"])
    assert out.exit_code == 1
    assert out.output == "Error: the thing is wrong: do this instead\n"
