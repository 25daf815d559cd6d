# Shim so that `pip install -e .` works with tooling that predates PEP 660; all metadata is in pyproject.toml.
from setuptools import setup

setup()
