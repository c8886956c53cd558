"""The data layer: the engine (DuckDB) reads, renames and filters; columns are read as their role needs.

``table``: ``Table`` and ``load_table``; ``types``: treatment codings, time columns, numbers as text.
"""
