"""argocd-mirror: validate an Argo CD release on a throwaway cluster that mirrors production."""

__version__ = "0.1.0"
