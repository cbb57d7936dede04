# Package discovery lives here because hardware/ and datasets/ sit at the top level of the repository
# and ship inside the wheel as neuromorph.hardware and neuromorph.datasets; everything else is in
# pyproject.toml.
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["neuromorph", "neuromorph.*"]) + ["neuromorph.hardware", "neuromorph.datasets"],
    package_dir={"neuromorph.hardware": "hardware", "neuromorph.datasets": "datasets"},
)
