"""Builds the standalone extension ``dagent._dagent``.

1. ``swift build -c $DAGENT_SWIFT_CONFIG --product CDAgent`` in the repository
   (default ``release``; ``debug`` for quick test builds) makes libCDAgent.so;
2. the committed SWIG output ``dagent/dagent_wrap.c`` (``scripts/gen-swig``)
   is compiled against it;
3. libCDAgent.so is copied next to the extension, which finds it through an
   rpath of ``$ORIGIN``: no LD_LIBRARY_PATH is needed.

Environment: DAGENT_ROOT (the repository; default: the parent of this
directory), DAGENT_SWIFT_CONFIG (release|debug), DAGENT_SWIFT_LIB (a directory
holding a built libCDAgent.so: skips the Swift build).
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("DAGENT_ROOT", HERE.parent)).resolve()
INCLUDE = ROOT / "Sources" / "CDAgent" / "include"
LIBNAME = "libCDAgent.so"


def swift_library_dir():
    given = os.environ.get("DAGENT_SWIFT_LIB")
    if given:
        return Path(given).resolve()
    if not (ROOT / "Package.swift").exists():
        raise SystemExit(f"dagent: cannot find the Swift package at {ROOT} (set DAGENT_ROOT or DAGENT_SWIFT_LIB)")
    config = os.environ.get("DAGENT_SWIFT_CONFIG", "release")
    print(f"dagent: swift build -c {config} --product CDAgent (in {ROOT})", flush=True)
    subprocess.run(["swift", "build", "-c", config, "--product", "CDAgent"], cwd=ROOT, check=True)
    out = subprocess.run(["swift", "build", "-c", config, "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out)


class BuildExt(build_ext):
    def build_extension(self, ext):
        libdir = swift_library_dir()
        lib = libdir / LIBNAME
        if not lib.exists():
            raise SystemExit(f"dagent: {lib} was not built")
        ext.library_dirs = [str(libdir)]
        super().build_extension(ext)
        self._swift_lib = lib
        target = Path(self.get_ext_fullpath(ext.name)).parent / LIBNAME
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, target)

    def copy_extensions_to_source(self):
        # --inplace: setuptools copies the extension alone into the source tree; the library goes with it
        super().copy_extensions_to_source()
        shutil.copy2(self._swift_lib, HERE / "dagent" / LIBNAME)


setup(
    ext_modules=[Extension(
        "dagent._dagent",
        sources=["dagent/dagent_wrap.c"],
        include_dirs=[str(INCLUDE)],
        libraries=["CDAgent"],
        extra_compile_args=["-O2", "-Wno-unused-function"],
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
    )],
    cmdclass={"build_ext": BuildExt},
    package_data={"dagent": ["dagent.i"]},
)
