"""What pyproject.toml's tables cannot say: the code packages are found (``geo``, ``api``, ``maps``
and their subpackages), and the bundled data directory ``data/`` — fixed at the repository root
— ships as the package ``zoning_data``, so an installed ``zoning`` has its zones, base layers,
recipes and the list of zones not digitised (``geo.paths`` finds it in a checkout and installed).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["geo", "geo.*", "api", "api.*", "maps", "maps.*"]), "zoning_data"],
    package_dir={"zoning_data": "data"},
)
