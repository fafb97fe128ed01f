"""mysqlpool's setup.py, kept as the entry point the project is known by.

All metadata lives in pyproject.toml; ``pip install .`` and ``python setup.py``
both read it. Here: the C extensions, the pool's probes (mysqlpool/_probes.c), its
common checkout and check-in (_hot_path.c) and the record of holders (_holders.c).
They are optional: without a C compiler mysqlpool installs and runs their Python
equivalents (the probes through ctypes), more slowly (mysqlclient needs the
compiler anyway).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("mysqlpool._probes", ["mysqlpool/_probes.c"], optional=True),
        Extension("mysqlpool._hot_path", ["mysqlpool/_hot_path.c"], optional=True),
        Extension("mysqlpool._holders", ["mysqlpool/_holders.c"], optional=True),
    ]
)
