"""pytest plugin for argocd-mirror scenarios (registered through the pytest11 entry point).

Auto-loaded by every pytest run, so it must stay inert unless a scenario uses it.
"""

from __future__ import annotations
