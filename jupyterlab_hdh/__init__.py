"""HDH, the open Health Data Hub: control plane, data services and CLI."""

__version__ = "0.1.0"
