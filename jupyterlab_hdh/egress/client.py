"""Moved: the airlock's notebook API is :mod:`hdh.airlock` (``from hdh import airlock``).

This name keeps notebooks written against ``jupyterlab_hdh.egress.client`` working.
"""

from hdh.airlock import *  # noqa: F403
from hdh.airlock import __all__  # noqa: F401
