"""The wheel is the product: built from this tree, installed into a fresh virtualenv, run from a directory that is
not a checkout. Offline: the wheel is built with the setuptools of this environment (--no-build-isolation, the dev
extra's setuptools>=77) and installed with --no-index; the fresh virtualenv reaches its dependencies (kubernetes,
PyYAML, pytest, ...) through a .pth line naming this environment's site-packages, whose own .pth files (the
editable install of the checkout) it does not run."""

from __future__ import annotations

import email
import importlib.metadata
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import validator
from tests.conftest import real_manifest

pytestmark = pytest.mark.slow  # about 10 s: a build, a virtualenv, an install and five processes

REPO = Path(__file__).resolve().parents[1]
# what a build must not see (caches, virtualenvs, earlier builds); everything else of the tree is copied, so the
# check that tests/ and benchmarks/ stay out of the wheel means something
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", "build", "dist", "artifacts",
                                    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".benchmarks")


@dataclass
class Installed:
    wheel: Path
    venv: Path
    elsewhere: Path  # the working directory of every command: no checkout, no pyproject.toml up the tree
    env: dict[str, str]
    build_log: str

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.elsewhere, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def cli(self) -> str:
        return str(self.venv / "bin" / "argocd-mirror")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setuptools_supports_pep639() -> None:
    version = importlib.metadata.version("setuptools")
    if tuple(int(part) for part in version.split(".")[:2]) < (77, 0):
        pytest.fail(f"setuptools {version} cannot build this wheel offline (PEP 639 needs >= 77): "
                    "pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    _setuptools_supports_pep639()
    root = tmp_path_factory.mktemp("wheel")
    source, dist, venv, elsewhere = root / "source", root / "dist", root / "venv", root / "elsewhere"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "PYTEST_"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-v", str(source), "-w", str(dist)],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("argocd_mirror-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "--no-deps", "--no-index", str(wheel)],
                             env=env, capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(purelib) / "zz_dependencies_of_the_test_environment.pth").write_text(sysconfig.get_path("purelib") + "\n")
    elsewhere.mkdir()
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{closed_port()}",  # no engine here, and never a real one on CI
               ARGOCD_MIRROR_CACHE=str(root / "cache"), PYTEST_DISABLE_PLUGIN_AUTOLOAD="")
    return Installed(wheel, venv, elsewhere, env, build.stdout + build.stderr)


def test_the_wheel_ships_the_code_scenarios_profiles_and_license_only(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = email.message_from_bytes(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
        entry_points = wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scenarios/")) or "/tests/" in n]
    assert {n.split("/")[0] for n in names} == {"validator", f"argocd_mirror-{validator.__version__}.dist-info"}
    shipped = {f"validator/{p.relative_to(REPO / 'validator')}" for p in (REPO / "validator").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    shipped |= {f"validator/scenarios/{p.relative_to(REPO / 'scenarios')}" for p in (REPO / "scenarios").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert {"validator/scenarios/profiles/default.yaml", "validator/scenarios/test_fresh_install.py",
            "validator/scenarios/gate.ini", "validator/verdict.schema.json"} <= shipped
    assert shipped - names == set()  # every file of validator/ and scenarios/, data included
    assert f"argocd_mirror-{validator.__version__}.dist-info/licenses/LICENSE" in names
    assert (metadata["Version"], metadata["License-Expression"]) == (validator.__version__, "Apache-2.0")
    assert "[pytest11]\nargocd_mirror = validator.pytest_plugin" in entry_points
    warnings = [line for line in installed.build_log.splitlines() if "Warning" in line]  # e.g. a license table
    assert not warnings, warnings


def test_the_installed_cli_works_from_any_directory(installed: Installed) -> None:
    where = installed.run(installed.python, "-c", "import validator, validator.scenarios as s; "
                                                  "print(validator.__file__); print(s.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(installed.venv)) for line in where.stdout.split()), where.stdout

    version = installed.run(installed.cli, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"argocd-mirror {validator.__version__}")

    broken = installed.run(installed.cli, "preflight", str(real_manifest("v2.11.1/install.yaml")))
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "argocd-redis-network-policy" in broken.stdout
    fixed = installed.run(installed.cli, "preflight", str(real_manifest("v2.11.2/install.yaml")), "--profile", "ha")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr

    resolved = installed.run(installed.cli, "resolve", str(real_manifest("v2.11.2/install.yaml")))
    assert resolved.returncode == 0, resolved.stderr

    validate = installed.run(installed.cli, "validate", str(real_manifest("v2.11.2/install.yaml")),
                             "--artifacts", "out")
    assert validate.returncode == 2, validate.stdout + validate.stderr
    verdict = validate.stdout.splitlines()[0]
    assert verdict.startswith(f"ERROR {real_manifest('v2.11.2/install.yaml')}") and ": could not validate: " in verdict
    assert "Docker engine not reachable" in verdict, verdict  # having found the shipped profile
    assert (installed.elsewhere / "out" / "verdict.json").is_file()


def test_the_installed_scenarios_run_under_pytest(installed: Installed) -> None:
    """The README's line, from the installed package: the scenarios collected, the baseline ones left out."""
    result = installed.run(installed.python, "-m", "pytest", "--pyargs", "validator.scenarios",
                           "--mirror-candidate", "v3.5.1", "--collect-only", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rootdir: {installed.elsewhere}" in result.stdout  # no checkout around
    assert "collected 15 items / 8 deselected / 7 selected" in result.stdout
    tree = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("<")]
    assert tree[:3] == ["<Package validator>", "<Package scenarios>", "<Module test_app_smoke.py>"], tree
    assert {"<Module test_fresh_install.py>", "<Function test_every_object_applies>", "<Module test_ha.py>"} <= set(
        tree)
    assert "left out: rollback, self-managed, upgrade: they need --mirror-baseline SPEC" in result.stdout


GATE_COLLECTS = """
import sys
from pathlib import Path

import pytest

from validator.cli import build_parser
from validator.commands.validate import pytest_args

args = build_parser(["validate"]).parse_args(["validate", "v3.5.1", "--baseline", "v3.4.2", "--profile", "default"])
args.keep_cluster = "never"
sys.exit(pytest.main([*pytest_args(args, ["fresh-install", "upgrade"], Path("out")), "--collect-only", "-q"]))
"""


def test_the_installed_gate_finds_its_scenarios(installed: Installed) -> None:
    """`validate`'s inner pytest command line, from the installed package, with a project's pytest configuration
    around it that would drop steps (the gate's own gate.ini keeps it out)."""
    around = installed.venv.parent / "pytest.ini"  # found upwards from site-packages: a project's configuration
    around.write_text("[pytest]\naddopts = -k no_step_has_this_name\n")
    try:
        result = installed.run(installed.python, "-c", GATE_COLLECTS)
    finally:
        around.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 tests collected" in result.stdout, result.stdout
    assert "test_fresh_install.py::test_every_object_applies" in result.stdout
    assert "test_upgrade.py::test_candidate_applies_over_baseline" in result.stdout


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "validator.__version__"}
    assert project["project"]["license"] == "Apache-2.0"
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License\n")
