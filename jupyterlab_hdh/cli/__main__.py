"""``python -m jupyterlab_hdh.cli``: the ``hdh`` command."""

from jupyterlab_hdh.cli import main

main()
