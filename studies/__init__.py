"""unetmm.studies: study specs, the Ray Tune + Optuna search, reports, export and the CLI."""
