"""Raw AIHub / KISTI files to normalized records (see :mod:`kositp.records`), every record accounted for."""
