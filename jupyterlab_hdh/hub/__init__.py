"""The embedded hub: JupyterHub + configurable-http-proxy + the guard + bubblewrap sandboxes.

* :mod:`.authenticator` — :class:`HdhAuthenticator`, local accounts of the HDH store;
* :mod:`.spawner` — :class:`SandboxSpawner`, one named server per project = one sandbox;
* :mod:`.config` — the JupyterHub configuration for a data directory (written by ``hdh up``).

Only this package (and ``guard``) imports JupyterHub; importing ``jupyterlab_hdh.hub``
itself imports nothing heavy.
"""
