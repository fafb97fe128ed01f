"""mysqlpool's setup.py, kept as the entry point the project is known by.

All metadata lives in pyproject.toml; ``pip install .`` and ``python setup.py``
both read it.
"""

from setuptools import setup

setup()
