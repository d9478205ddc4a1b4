"""unetmm.search_spaces: define-by-run Optuna spaces of skip designs (they build nothing).

``get_space(name).suggest(trial, bounds) -> Candidate``; ``SPACES`` lists the names;
``reference_points(space, bounds)`` gives the parameters of the study's reference designs.
"""

from search_spaces import skip_designs as _skip_designs  # noqa: F401  (registers the spaces)
from search_spaces import flat as _flat  # noqa: F401  (registers the flat twins)
from search_spaces.bounds import SpaceBounds
from search_spaces.candidate import Candidate
from search_spaces.references import REFERENCE_NAMES, encode_point, reference_points
from search_spaces.registry import SPACES, SearchSpace, get_space

__all__ = [
    "REFERENCE_NAMES",
    "SPACES",
    "Candidate",
    "SearchSpace",
    "SpaceBounds",
    "encode_point",
    "get_space",
    "reference_points",
]
