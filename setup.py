"""Package layout that pyproject.toml cannot express on its own.

The built-in runbooks are kept at the top of the repository (runbooks/), where
operators look for them, and ship inside the wheel as the package
``erpops.runbooks`` so that an installed erpops finds them
(``importlib.resources.files("erpops.runbooks")``).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["erpops", "erpops.*"]) + ["erpops.runbooks"],
    package_dir={"erpops.runbooks": "runbooks"},
    package_data={"erpops.runbooks": ["*.yaml"], "erpops": ["py.typed"]},
)
