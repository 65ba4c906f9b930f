"""argocd-mirror's pytest plugin (pytest11 entry point). Inert unless a scenario uses its fixtures."""
