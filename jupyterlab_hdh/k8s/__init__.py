"""HDH on Kubernetes: each project sandbox as a pod, built from the same
:class:`~jupyterlab_hdh.sandbox.SandboxSpec` as the embedded bubblewrap sandbox.

``profiles`` owns the compute profiles (CPU, GPU, Spark), ``pod`` turns a specification
and a profile into KubeSpawner settings (pure, rendered and validated offline in the
tests), ``spawner`` is :class:`ProjectKubeSpawner`, the KubeSpawner subclass JupyterHub
runs on a cluster.
"""
