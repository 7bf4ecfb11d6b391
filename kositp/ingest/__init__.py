"""Raw AIHub / KISTI files to normalized records (see :mod:`kositp.records`), every record accounted for."""

from kositp.compiled import ensure_current

ensure_current()  # before any compiled module of this package is imported (kositp.compiled)
