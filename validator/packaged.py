"""What argocd-mirror ships beside its code: the scenarios and the mirror profiles in them.

In the repository they sit in scenarios/ (profiles in scenarios/profiles/); the wheel ships that directory as the
package validator.scenarios (setup.py), and an editable install maps the same name onto it. So they are found
through the package, never through a checkout or the working directory: an installed argocd-mirror works from
anywhere, and `pytest --pyargs validator.scenarios` runs the very scenarios `validate` runs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from validator.errors import EnvironmentNotReady

SCENARIOS_PACKAGE = "validator.scenarios"


def scenarios_dir() -> Path:
    """The directory of the shipped scenarios: a real directory, since pytest collects files (a wheel unpacked
    into site-packages or an editable install; a zipped package cannot run them)."""
    try:
        root = resources.files(SCENARIOS_PACKAGE)
    except ModuleNotFoundError:
        raise EnvironmentNotReady(f"argocd-mirror is installed without its scenarios (no package {SCENARIOS_PACKAGE}"
                                  "): reinstall it (pip install argocd-mirror; in a checkout: pip install -e .)"
                                  ) from None
    path = Path(str(root))
    if not path.is_dir():
        raise EnvironmentNotReady(f"the scenarios of argocd-mirror are not a directory ({path}): install it "
                                  "unpacked (pip install), not as a zip")
    return path


def profiles_dir() -> Path:
    """The shipped mirror profiles (default, ha, calico), selectable by name."""
    return scenarios_dir() / "profiles"
