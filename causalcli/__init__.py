"""causalcli: causal inference from YAML study specs, on the command line and from Python.

``causalcli.estimate(spec, data=None, **overrides)`` (``causalcli.api``) returns the same
``Result`` as ``causalcli estimate``. It is loaded on first use, so that importing the
package (as ``causalcli --help`` and ``validate`` do) loads no heavy library.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover (for type checkers and editors; at run time see __getattr__)
    from causalcli.api import estimate

__version__ = "0.1.0"
__all__ = ["__version__", "estimate"]


def __getattr__(name: str):  # PEP 562: the module's lazy attributes
    if name == "estimate":
        # importlib rather than an import statement: the package root stays below every layer
        # (they import __version__ from it), so no import chain leads back up to it
        import importlib

        return importlib.import_module("causalcli.api").estimate
    raise AttributeError(f"module 'causalcli' has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion in notebooks shows the lazy attribute too
    return sorted({*globals(), "estimate"})
