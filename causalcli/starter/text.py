"""The starter spec as written: the mapping as YAML under comments that say what was guessed and left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from causalcli.spec.placeholders import TODO
from causalcli.starter.profile import DataProfile


@dataclass
class Starter:
    """A starter spec: the mapping, its YAML text with comments, and what was decided."""

    spec: dict
    text: str
    guessed: list[str] = field(default_factory=list)    # "key: value (why)"
    left_out: dict[str, str] = field(default_factory=dict)  # column -> reason
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for stderr: what the comments of the spec hold."""
        todo = todo_keys(self.spec)
        parts = [f"{len(self.guessed)} guessed" if self.guessed else "nothing guessed",
                 f"{len(self.left_out)} column{'s' * (len(self.left_out) != 1)} left out"]
        if todo:
            parts.append(f"set {', '.join(todo)} (TODO)")
        why = "; the spec's comments say why" if self.guessed or self.left_out or todo else ""
        return f"init: {'; '.join(parts)}{why}"


def spec_text(st: Starter, data: DataProfile, design: str, placed: bool = False) -> str:
    import yaml

    where = "this file's folder" if placed else "where you save this file (or use init -o FILE)"
    lines = [f"# Starter spec written by `causalcli init` from {data.path} ({data.rows:,} rows, "
             f"{len(data.types)} columns); data.path is relative to {where}."]
    if st.guessed:
        lines.append("# Guessed from the data (check them):")
        lines += [f"#   {g}" for g in st.guessed]
    todo = todo_keys(st.spec)
    if todo:
        lines.append(f"# Set {', '.join(todo)} (written as TODO): `causalcli validate` refuses a TODO by key.")
    for note in st.notes:
        lines.append(f"# Note: {note}.")
    if st.left_out:
        lines.append("# Columns left out, and why:")
        lines += [f"#   {c}: {why}" for c, why in st.left_out.items()]
    if design in ("matching", "weighting", "dml", "did"):
        lines.append("# Keep only covariates measured before treatment (confounders), then run `causalcli validate`.")
    # a column name with a line break must not end a comment early
    comments = "\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines)
    return comments + "\n" + yaml.safe_dump(st.spec, sort_keys=False, allow_unicode=True)


def todo_keys(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in todo_keys(v, f"{path}.{key}" if path else str(key))]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in todo_keys(v, f"{path}[{i}]")]
    return [path] if node == TODO else []
