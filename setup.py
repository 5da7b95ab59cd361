"""Builds the two compiled modules of the CityGML reader: :mod:`converters.citygml.gml_scan`
(Cython over lxml's C API) and :mod:`converters.citygml.tess_kernel` (batch triangulation).

Everything else is declared in pyproject.toml. The modules are optional: when they cannot be built
(no C compiler or Python headers), the install goes on and the CityGML reader uses its Python
and numpy paths, which give the same features, slower (docs/citygml.md, "Compiled scan").
"""
from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 (any build failure leaves the Python path)
            print(f"warning: the compiled CityGML modules were not built ({exc}); the Python reader is used",
                  file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: {ext.name} was not built ({exc}); the Python reader is used", file=sys.stderr)


def extensions() -> list[Extension]:
    try:
        import lxml
        from Cython.Build import cythonize
    except ImportError as exc:
        print(f"warning: cannot build the compiled CityGML modules ({exc})", file=sys.stderr)
        return []
    ext = Extension("converters.citygml.gml_scan", ["converters/citygml/gml_scan.pyx"],
                    include_dirs=lxml.get_include(), extra_compile_args=["-O2"])
    # no fused multiply-add: the kernel's arithmetic must be numpy's, operation by operation
    kernel = Extension("converters.citygml.tess_kernel", ["converters/citygml/tess_kernel.pyx"],
                       extra_compile_args=["-O2", "-ffp-contract=off"])
    return cythonize([ext, kernel], language_level=3, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
