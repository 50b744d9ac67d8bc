"""Shipped SHACL shapes (DCAT-AP 3.0.1, CC-BY 4.0; HDH extras): data files only."""
