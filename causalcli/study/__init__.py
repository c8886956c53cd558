"""Running studies from Python: load a spec, check it against its data, estimate, refute.

The CLI and the Python API (``causalcli.estimate``) are thin layers over these
functions; they know nothing of terminals.
"""

from causalcli.study.batch import check_studies, run_studies
from causalcli.study.load import as_loaded, json_schema, load_spec, validate_mapping
from causalcli.study.run import prepare_study, run_study, study_graph

__all__ = ["as_loaded", "check_studies", "json_schema", "load_spec", "prepare_study", "run_studies", "run_study",
           "study_graph", "validate_mapping"]
