"""Backup and restore of an installation in open formats (issue 15): the core library.

Host-side, pure domain code (no web framework, no click; never imported inside a sandbox):

* :mod:`~jupyterlab_hdh.backup.store_dump`: the store as one JSON Lines file per table plus
  ``schema.json``, dumped from a consistent snapshot and loaded into an empty store of either
  backend;
* :mod:`~jupyterlab_hdh.backup.sealed`: files (the data directory's keys) encrypted with an
  operator's passphrase (scrypt + ChaCha20-Poly1305);
* :mod:`~jupyterlab_hdh.backup.manifest`: a backup folder's manifest (every file's size and
  SHA-256), written last so that an interrupted backup is visibly incomplete, and verified
  before anything is restored.

Every refusal is a :class:`~jupyterlab_hdh.backup.errors.BackupError` (an ``HdhError``).
"""
