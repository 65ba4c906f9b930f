"""Only what pyproject.toml cannot say (everything else is there): which packages the wheel ships.

scenarios/ stays at the top of the repository, where people read and run it, but it ships inside the package as
validator.scenarios (profiles/ included), and the code finds it through the package (importlib.resources), in a
wheel and in an editable install alike. Every directory under validator/ ships (namespace packages: data
directories such as validator/compat/data too) without a list to maintain; tests/ and benchmarks/ never ship.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["validator", "validator.*"], exclude=["*.__pycache__"]),
              "validator.scenarios", "validator.scenarios.profiles"],
    package_dir={"validator.scenarios": "scenarios"},
)
