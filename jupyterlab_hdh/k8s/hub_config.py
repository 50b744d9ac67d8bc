"""JupyterHub's configuration on Kubernetes, as an importable (and unit-tested) module.

The JupyterHub Helm chart runs ``hub.extraConfig`` snippets after its own configuration;
``k8s/values.yaml`` has one, ``from jupyterlab_hdh.k8s.hub_config import configure;
configure(c)``, so everything HDH sets lives here, not in YAML. The same roles and home page
as on one machine (``hub/config.py``); what differs is read from the hub pod's environment
(:class:`ClusterSettings`, each variable named when missing): the spawner is
:class:`~jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner`, and the guard and the control
plane are Deployments the hub knows as external services (their URLs and API tokens); the
spawner answers the guard's URL for every project server, and gives pods the guard's API
bridge (``HDH_GUARD_BRIDGE_URL``, by default the guard's host on port 8090).
What the chart already configured (the idle culler's service and role) is kept.

Single sign-on (optional; without ``HDH_OIDC_ISSUER`` the local accounts stay): the
``HDH_OIDC_*`` variables (:func:`jupyterlab_hdh.hub.oidc.settings_from_env`: issuer, client
id, the secret in ``HDH_OIDC_CLIENT_SECRET`` or a mounted ``HDH_OIDC_CLIENT_SECRET_FILE``,
scopes, claims, ``HDH_OIDC_ROLE_MAP`` as JSON, explicit endpoints or discovery at start) make
the authenticator :class:`~jupyterlab_hdh.hub.oidc.HdhOIDCAuthenticator`; the secret is read
by the authenticator from the pod's environment, never copied into the configuration. The
provider's tokens are kept encrypted: ``JUPYTERHUB_CRYPT_KEY`` (or the chart's
``hub.config.CryptKeeper.keys``) must be set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jupyterlab_hdh.hub.config import (
    API_SERVICE,
    GUARD_SERVICE,
    TEMPLATES,
    HubConfigError,
    MayReview,
    hub_roles,
)
from jupyterlab_hdh.k8s.profiles import parse_profiles
from jupyterlab_hdh.k8s.project import GUARD_BRIDGE_PORT

#: environment variable → ClusterSettings field (the chart's hub.extraEnv sets them)
ENVIRONMENT = {
    "HDH_DATA_DIR": "data_dir",
    "HDH_STORE_URL": "store_url",
    "HDH_GUARD_URL": "guard_url",
    "HDH_GUARD_API_TOKEN": "guard_token",
    "HDH_API_URL": "api_url",
    "HDH_API_TOKEN": "api_token",
}
OPTIONAL = {
    "HDH_PROFILES": "profiles",
    "HDH_DEFAULT_PROFILE": "default_profile",
    "HDH_GUARD_BRIDGE_URL": "bridge_url",
}


@dataclass(frozen=True)
class ClusterSettings:
    data_dir: str
    store_url: str
    guard_url: str
    guard_token: str
    api_url: str
    api_token: str
    profiles: str = ""  # JSON list of compute profiles (k8s.profiles); empty: the defaults
    default_profile: str = "cpu"
    bridge_url: str = ""  # the guard's API bridge; empty: the guard's host, port 8090

    def guard_bridge_url(self) -> str:
        if self.bridge_url:
            return self.bridge_url
        parts = urlsplit(self.guard_url)
        return f"http://{parts.hostname}:{GUARD_BRIDGE_PORT}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        env = os.environ if env is None else env
        missing = [k for k in ENVIRONMENT if not env.get(k)]
        if missing:
            raise HubConfigError(
                f"the hub pod lacks {', '.join(missing)}: set them in hub.extraEnv"
                " (k8s/values.yaml)"
            )
        values = {f: env[k] for k, f in ENVIRONMENT.items()}
        values.update({f: env[k] for k, f in OPTIONAL.items() if env.get(k)})
        return cls(**values)

    def profile_list(self) -> list[dict[str, Any]]:
        if not self.profiles:
            return []
        try:
            raw = json.loads(self.profiles)
        except json.JSONDecodeError as exc:
            raise HubConfigError(f"HDH_PROFILES is not JSON: {exc.msg}") from None
        if not isinstance(raw, list):
            raise HubConfigError("HDH_PROFILES is a JSON list of compute profiles")
        parse_profiles(raw)  # a bad profile stops the hub, naming it
        return raw


def cluster_settings(cs: ClusterSettings) -> dict[str, dict[str, Any]]:
    """HDH's JupyterHub settings on a cluster, as ``{section: {trait: value}}``."""
    services = [
        {
            "name": GUARD_SERVICE,
            "url": cs.guard_url,
            "api_token": cs.guard_token,
            "oauth_no_confirm": True,
            "oauth_client_allowed_scopes": [f"access:services!service={GUARD_SERVICE}"],
        },
        {
            "name": API_SERVICE,
            "url": cs.api_url,
            "api_token": cs.api_token,
            "oauth_no_confirm": True,
            "oauth_client_allowed_scopes": [f"access:services!service={API_SERVICE}"],
            "display": True,
        },
    ]
    return {
        "JupyterHub": {
            "authenticator_class": "jupyterlab_hdh.hub.authenticator.HdhAuthenticator",
            "spawner_class": "jupyterlab_hdh.k8s.spawner.ProjectKubeSpawner",
            "allow_named_servers": True,
            "named_server_limit_per_user": 20,
            "default_url": f"/services/{API_SERVICE}/ui/",
            "template_paths": [str(TEMPLATES)],
            "template_vars": {
                "hdh_projects_url": f"/services/{API_SERVICE}/ui/",
                "hdh_may_review": MayReview(cs.data_dir),
            },
            "services": services,
            "load_roles": hub_roles(control_plane=True),
        },
        "Authenticator": {"allow_all": True},
        "HdhAuthenticator": {"data_dir": cs.data_dir},
        "ProjectKubeSpawner": {
            "data_dir": cs.data_dir,
            "profiles": cs.profile_list(),
            "default_profile": cs.default_profile,
            "guard_url": cs.guard_url,
            "bridge_url": cs.guard_bridge_url(),
            "start_timeout": 300,
            "http_timeout": 60,
            # a project's workspace claim is the operator's and a reviewer's is theirs to keep:
            # deleting a named server never deletes a claim
            "delete_pvc": False,
        },
    }


def _by_name(existing: Any, ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chart's entries (e.g. the idle culler's) with HDH's, HDH's winning on a name."""
    names = {o["name"] for o in ours}
    kept = [e for e in (existing or []) if isinstance(e, dict) and e.get("name") not in names]
    return [*kept, *ours]


def oidc_cluster_settings(
    c: Any, env: Mapping[str, str], data_dir: str
) -> dict[str, dict[str, Any]] | None:
    """The single sign-on part from ``HDH_OIDC_*`` (None: local accounts)."""
    from jupyterlab_hdh.hub.oidc import OidcConfigError, authenticator_settings, settings_from_env

    try:
        oidc = settings_from_env(env)
        if oidc is None:
            return None
        if not env.get("JUPYTERHUB_CRYPT_KEY") and not c.CryptKeeper.get("keys"):
            raise OidcConfigError(
                "single sign-on keeps the provider's tokens encrypted: set JUPYTERHUB_CRYPT_KEY"
                " (hub.extraEnv, from a Secret) or hub.config.CryptKeeper.keys"
            )
        return authenticator_settings(
            oidc,
            data_dir=data_dir,
            endpoints=oidc.resolved(),
            callback_url=env.get("HDH_OIDC_CALLBACK_URL", ""),
        )
    except OidcConfigError as exc:
        raise HubConfigError(str(exc)) from None


def configure(c: Any, env: Mapping[str, str] | None = None) -> None:
    """Apply HDH's settings to the chart's JupyterHub config object ``c``."""
    env = os.environ if env is None else env
    cs = ClusterSettings.from_env(env)
    settings = cluster_settings(cs)
    sso = oidc_cluster_settings(c, env, cs.data_dir)
    if sso is not None:
        del settings["HdhAuthenticator"]
        settings["JupyterHub"].update(sso.pop("JupyterHub"))
        settings.update(sso)
    hub = settings["JupyterHub"]
    for key in ("services", "load_roles"):
        hub[key] = _by_name(c.JupyterHub.get(key), hub[key])
    for section, traits in settings.items():
        for trait, value in traits.items():
            setattr(c[section], trait, value)
