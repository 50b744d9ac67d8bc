"""The SNDS columns that hold person identifiers, per table template: one definition for both
sides of the sandbox boundary.

The disclosure checks (:mod:`hdh.disclosure.config`: a column of these names in an output is
flagged) read it inside the sandbox; the host's schema registry
(``jupyterlab_hdh.data.snds_schemas``: which columns ingestion pseudonymises) imports it from
here. A top-level module, not one of :mod:`hdh.disclosure`, so that importing it loads no
pandas: plain data, standard library only.
"""

from __future__ import annotations

#: Columns holding person identifiers. In a raw extract they hold direct
#: identifiers; ingestion replaces every value by its keyed pseudonym.
IDENTIFIER_FIELDS: dict[str, tuple[str, ...]] = {
    "IR_BEN_R": ("BEN_NIR_PSA", "BEN_NIR_ANO", "BEN_IDT_ANO", "ASS_NIR_ANO"),
    "ER_PRS_F": ("BEN_NIR_PSA",),
    "IR_IMB_R": ("BEN_NIR_PSA",),
    "KI_CCI_R": ("BEN_IDT_ANO", "BEN_NIR_ANO", "DCD_IDT_ENC"),
    "T_MCOaaC": ("NIR_ANO_17", "NIR_ANO_MAM"),
    "HDH_PV_CAS": ("BEN_IDT_ANO",),
    "HDH_DEV_TLM": ("BEN_IDT_ANO", "DEV_IDT"),  # a device serial number identifies its wearer
}
