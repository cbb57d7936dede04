# Package discovery lives here because hardware/ sits at the top level of the repository and ships
# inside the wheel as neuromorph.hardware; everything else is in pyproject.toml.
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["neuromorph", "neuromorph.*"]) + ["neuromorph.hardware"],
    package_dir={"neuromorph.hardware": "hardware"},
)
