"""The audit log: append-only, hash-chained events written with the change they record."""

from jupyterlab_hdh.audit.log import VerifyResult, canonical_json, record, verify

__all__ = ["VerifyResult", "canonical_json", "record", "verify"]
