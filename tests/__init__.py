# A regular package, so `tests.…` names resolve here (first on sys.path) even when a dependency
# installs a top-level `tests` package into site-packages (umsc does): spawned ranks unpickle
# their worker function by that name.
