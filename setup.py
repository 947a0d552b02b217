"""Everything is declared in setup.cfg; this adds the one thing it cannot say: the optional
compiled accelerator of the terminal's fast path (``vncmux/console/_fastloop_c/``).  Where no C
compiler is found the build goes on without it, and the Python code runs alone."""

from pathlib import Path

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vncmux.console._fastloop",
            sorted(str(c) for c in Path("vncmux/console/_fastloop_c").glob("*.c")),
            depends=["vncmux/console/_fastloop_c/fastloop.h"],
            optional=True,
            # (only PyInit__fastloop is the module's: the files' shared functions stay inside)
            extra_compile_args=["-O2", "-fvisibility=hidden"],
        )
    ]
)
