"""The data layer: the engine (DuckDB) reads, renames and filters; columns are read as their role needs.

``sql``: the study table's name and the one quoting of identifiers and literals; ``load``: files,
stdin and in-memory tables into DuckDB; ``filter``: renames and the sandboxed ``data.filter``;
``table``: ``Table``, ``load_table`` and the columns a design reads; ``types``: treatment codings,
time columns, numbers written as text.
"""
