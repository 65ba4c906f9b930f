"""Throwaway clusters that mirror production, never leak, and never touch another cluster.

Entry points: mirror_cluster() (context manager), prove_networkpolicy_enforced(), sweep(); providers
`kind` (default) and `existing` behind one interface (validator.cluster.base.Provider).
"""

from __future__ import annotations

from validator.cluster.lifecycle import KEEP_MODES, PROVIDERS, TeardownIncomplete, Terminated, mirror_cluster
from validator.cluster.model import Cluster
from validator.cluster.netpol import prove_networkpolicy_enforced

__all__ = ["KEEP_MODES", "PROVIDERS", "Cluster", "TeardownIncomplete", "Terminated", "mirror_cluster",
           "prove_networkpolicy_enforced"]
