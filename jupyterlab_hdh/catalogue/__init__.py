"""The catalogue's domain layer: metadata records, data dictionaries, search, DCAT export.

Pure functions and models, no database and no web framework. The store and the
REST API build on these:

* ``records``: the pydantic model of a dataset version (HealthDCAT-AP fields);
* ``dictionary``: a table's data dictionary from its Table Schema, CSV export;
* ``search``: accent- and case-insensitive full-text search over datasets,
  tables and variables;
* ``dcat``: DCAT-AP / HealthDCAT-AP JSON-LD export and SHACL validation.
"""

from jupyterlab_hdh.catalogue.dcat import to_jsonld, validate_dcat
from jupyterlab_hdh.catalogue.dictionary import data_dictionary, dictionary_csv
from jupyterlab_hdh.catalogue.records import (
    Agent,
    DatasetRecord,
    QualitySummary,
    TableRecord,
    VariableRecord,
)
from jupyterlab_hdh.catalogue.search import Hit, SearchIndex, search

__all__ = [
    "Agent",
    "DatasetRecord",
    "Hit",
    "QualitySummary",
    "SearchIndex",
    "TableRecord",
    "VariableRecord",
    "data_dictionary",
    "dictionary_csv",
    "search",
    "to_jsonld",
    "validate_dcat",
]
