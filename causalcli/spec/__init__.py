"""The study spec: models (``models``), reading and validating (``loading``), ``--set`` (``overrides``).

The concrete study model joins every family's `design:` model; the registry in
``causalcli.designs`` builds it (``study_schema()``), so nothing here imports a family.
"""
