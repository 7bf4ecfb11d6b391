"""Raw AIHub / KISTI files to normalized records (see :mod:`kositp.records`), every record accounted for."""

from kositp.compiled import prefer_sources_if_stale

prefer_sources_if_stale()  # before any compiled module of this package is imported (kositp.compiled)
