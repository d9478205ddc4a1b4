"""unetmm.search_spaces: define-by-run Optuna spaces of skip designs (they build nothing)."""
