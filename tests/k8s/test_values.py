"""``k8s/values.yaml`` over the JupyterHub chart's defaults, validated against the chart's
values schema (``../shared/data/z2jh``: the chart itself, like Helm, is not installable
here), and the hub configuration it loads (``jupyterlab_hdh.k8s.hub_config``) run for real
on a JupyterHub application object."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from traitlets.config import Config

from jupyterlab_hdh.hub.config import HubConfigError
from jupyterlab_hdh.k8s.hub_config import ENVIRONMENT, configure

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT.parent / "shared" / "data" / "z2jh"
ENV = {
    "HDH_DATA_DIR": "/srv/hdh",
    "HDH_STORE_URL": "postgresql+psycopg://hdh@db/hdh",
    "HDH_GUARD_URL": "http://hdh-guard.hdh-system.svc:8000",
    "HDH_GUARD_API_TOKEN": "g" * 32,
    "HDH_API_URL": "http://hdh-api.hdh-system.svc:8080",
    "HDH_API_TOKEN": "a" * 32,
}


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's coalescing of a values file over the chart's: maps merge key by key, a null
    deletes the key, anything else (lists included) replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    if not CHART.is_dir():
        pytest.fail(f"the chart's reference data is missing: {CHART}")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    ours = yaml.safe_load((ROOT / "k8s" / "values.yaml").read_text())
    return helm_merge(defaults, ours)


def test_the_merged_values_validate_against_the_charts_schema(values) -> None:
    schema = yaml.safe_load((CHART / "values.schema.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)


def test_a_mistyped_key_is_caught_by_the_schema(values) -> None:
    """The validation is not vacuous: the chart's schema refuses unknown keys."""
    schema = yaml.safe_load((CHART / "values.schema.yaml").read_text())
    bad = helm_merge(values, {"singleuser": {"networkPolicy": {"egresAllowRules": {}}}})
    with pytest.raises(jsonschema.ValidationError, match="egresAllowRules"):
        jsonschema.Draft7Validator(schema).validate(bad)


def test_the_singleuser_network_policy_is_locked_down(values) -> None:
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True
    assert policy["egress"] == [] and policy["ingress"] == []
    assert not any(policy["egressAllowRules"].values())  # the default allows the internet
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    assert "hub.jupyter.org/network-access-hub" not in values["singleuser"]["extraLabels"]
    assert values["singleuser"]["storage"]["type"] == "none"
    for owner in (values["hub"], values["proxy"]["chp"]):
        rules = owner["networkPolicy"]["egressAllowRules"]
        assert rules["cloudMetadataServer"] is False
        assert rules["dnsPortsCloudMetadataServer"] is False


def _hub_config(values: dict[str, Any]) -> Config:
    """Run the chart's extraConfig snippets as the hub does (with ``c`` in scope)."""
    c = Config()
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler", "admin": False}]
    c.JupyterHub.load_roles = [
        {
            "name": "jupyterhub-idle-culler",
            "scopes": ["list:users"],
            "services": ["jupyterhub-idle-culler"],
        }
    ]
    snippets = values["hub"]["extraConfig"]
    for name in sorted(snippets):
        code = compile(snippets[name], f"extraConfig/{name}", "exec")
        exec(code, {"c": c})  # noqa: S102 - the chart's snippet, run as the hub runs it
    return c


def test_the_hub_configuration_module_sets_hdh_up(values, monkeypatch) -> None:
    from jupyterhub.app import JupyterHub

    from jupyterlab_hdh.hub.authenticator import HdhAuthenticator
    from jupyterlab_hdh.k8s.spawner import ProjectKubeSpawner

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert set(ENV) == set(ENVIRONMENT)
    assert set(ENV) <= set(values["hub"]["extraEnv"])  # the chart passes every variable
    c = _hub_config(values)
    app = JupyterHub(config=c)
    assert app.spawner_class is ProjectKubeSpawner
    assert app.authenticator_class is HdhAuthenticator
    assert app.allow_named_servers is True
    assert app.default_url == "/services/hdh/ui/"
    services = {s["name"]: s for s in app.services}
    assert set(services) == {"jupyterhub-idle-culler", "guard", "hdh"}  # the culler is kept
    assert services["guard"]["url"] == ENV["HDH_GUARD_URL"]
    assert services["hdh"]["api_token"] == ENV["HDH_API_TOKEN"]
    roles = {r["name"]: r for r in app.load_roles}
    assert "jupyterhub-idle-culler" in roles
    assert roles["hdh-guard"]["scopes"] == ["read:users:name"]
    assert f"access:services!service={'guard'}" in roles["user"]["scopes"]
    assert c.ProjectKubeSpawner.data_dir == "/srv/hdh"
    # every project server is routed to the guard; pods call its bridge port
    assert c.ProjectKubeSpawner.guard_url == ENV["HDH_GUARD_URL"]
    guard_host = ENV["HDH_GUARD_URL"].rsplit(":", 1)[0]
    assert c.ProjectKubeSpawner.bridge_url == f"{guard_host}:8090"
    monkeypatch.setenv("HDH_GUARD_BRIDGE_URL", "http://10.96.0.80:9090")
    assert _hub_config(values).ProjectKubeSpawner.bridge_url == "http://10.96.0.80:9090"


def test_a_missing_variable_stops_the_hub_naming_it() -> None:
    env = {k: v for k, v in ENV.items() if k != "HDH_API_TOKEN"}
    with pytest.raises(HubConfigError, match="HDH_API_TOKEN"):
        configure(Config(), env)
    with pytest.raises(Exception, match="unknown key 'colour'"):
        configure(Config(), {**ENV, "HDH_PROFILES": '[{"colour": "red"}]'})
    with pytest.raises(HubConfigError, match="not JSON"):
        configure(Config(), {**ENV, "HDH_PROFILES": "[nope"})


def test_single_sign_on_from_the_hub_pods_environment(monkeypatch) -> None:
    """``HDH_OIDC_*`` make the hub log in through the provider; the secret stays in the pod's
    environment (read by the authenticator, not copied into the configuration); bad or
    partial settings stop the hub naming what is wrong."""
    from jupyterhub.app import JupyterHub

    from jupyterlab_hdh.hub.oidc import HdhOIDCAuthenticator

    secret = "s" * 40
    sso = {
        **ENV,
        "HDH_OIDC_ISSUER": "https://keycloak.example.org/realms/hdh",
        "HDH_OIDC_CLIENT_ID": "hdh-hub",
        "HDH_OIDC_CLIENT_SECRET": secret,
        "HDH_OIDC_AUTHORIZE_URL": "https://keycloak.example.org/realms/hdh/auth",
        "HDH_OIDC_TOKEN_URL": "https://keycloak.example.org/realms/hdh/token",
        "HDH_OIDC_USERINFO_URL": "https://keycloak.example.org/realms/hdh/userinfo",
        "HDH_OIDC_END_SESSION_URL": "https://keycloak.example.org/realms/hdh/logout",
        "HDH_OIDC_ROLE_MAP": '{"/hdh/researchers": "researcher", "/hdh/admins": "admin"}',
        "HDH_OIDC_CALLBACK_URL": "https://hdh.example.org/hub/oauth_callback",
        "JUPYTERHUB_CRYPT_KEY": "k" * 64,
    }
    c = Config()
    configure(c, sso)
    app = JupyterHub(config=c)
    assert app.authenticator_class is HdhOIDCAuthenticator
    traits = c.HdhOIDCAuthenticator
    assert traits.token_url == sso["HDH_OIDC_TOKEN_URL"]
    assert traits.role_map == {"/hdh/researchers": "researcher", "/hdh/admins": "admin"}
    assert traits.oauth_callback_url == sso["HDH_OIDC_CALLBACK_URL"]
    assert traits.logout_redirect_url == sso["HDH_OIDC_END_SESSION_URL"] + "?client_id=hdh-hub"
    assert secret not in repr(c) and "HdhAuthenticator" not in c
    monkeypatch.setenv("HDH_OIDC_CLIENT_SECRET", secret)
    assert HdhOIDCAuthenticator(config=c).client_secret == secret  # from the environment
    # without HDH_OIDC_ISSUER: the local accounts, as before
    local = Config()
    configure(local, ENV)
    assert "HdhOIDCAuthenticator" not in local
    for change, message in [
        ({"HDH_OIDC_CLIENT_ID": ""}, "HDH_OIDC_CLIENT_ID"),
        ({"HDH_OIDC_CLIENT_SECRET": ""}, "HDH_OIDC_CLIENT_SECRET"),
        ({"JUPYTERHUB_CRYPT_KEY": ""}, "JUPYTERHUB_CRYPT_KEY"),
        ({"HDH_OIDC_TOKEN_URL": ""}, "give all of HDH_OIDC_AUTHORIZE_URL"),
        ({"HDH_OIDC_ROLE_MAP": '{"g": "superuser"}'}, "'superuser' is no HDH role"),
        ({"HDH_OIDC_ROLE_MAP": "{nope"}, "HDH_OIDC_ROLE_MAP is not JSON"),
        ({"HDH_OIDC_ISSUER": "keycloak"}, "not an http"),
    ]:
        with pytest.raises(HubConfigError, match=message):
            configure(Config(), {**sso, **change})
