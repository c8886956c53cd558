"""The `design:` block of the spec, one module per design family (pydantic models only)."""
