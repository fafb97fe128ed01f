"""mysqlpool's setup.py, kept as the entry point the project is known by.

All metadata lives in pyproject.toml; ``pip install .`` and ``python setup.py``
both read it. Here: the C extension of the pool's probes (mysqlpool/_probes.c).
It is optional: without a C compiler mysqlpool installs and asks through ctypes,
more slowly (mysqlclient needs the compiler anyway).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("mysqlpool._probes", ["mysqlpool/_probes.c"], optional=True),
        Extension("mysqlpool._hot_path", ["mysqlpool/_hot_path.c"], optional=True),
    ]
)
