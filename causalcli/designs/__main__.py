"""``python -m causalcli.designs``: print docs/designs/README.md, the family index read from the registry."""

from causalcli.designs import docs_index

print(docs_index(), end="")
