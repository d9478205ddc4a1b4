"""Reading a study's results: constraint-aware Pareto fronts (``pareto``), figures
(``plots``), the HTML/PNG report, export to training configs, and optuna-dashboard. Nothing
here writes to a study."""
