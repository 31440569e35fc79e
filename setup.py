"""Builds the optional C fast path of the L2 book check (predator.market._fastbook).

Everything else is configured in pyproject.toml. The extension is optional: when it
cannot be compiled, the install goes on and the pure-Python path is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "predator.market._fastbook",
            sources=["src/predator/market/_fastbook.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
