"""Everything is declared in setup.cfg; this adds the one thing it cannot say: the optional
compiled accelerator of the terminal's fast path (``vncmux/console/_fastloop.c``).  Where no C
compiler is found the build goes on without it, and the Python code runs alone."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vncmux.console._fastloop",
            ["vncmux/console/_fastloop.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
