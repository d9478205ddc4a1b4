"""Running a search: the driver (``driver.run_search``) asks Optuna for designs through Ray
Tune's searcher, runs each trial on a Ray worker (``worker``) under the driver<->worker
``protocol``, stops weak proxy runs early, recovers trials a dead driver left, and records
every outcome in the study's SQL storage. Importing this package imports neither Ray nor torch.
"""
