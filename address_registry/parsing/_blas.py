"""Load scipy's ``cython_blas`` on its own before numba asks for it (a start-up cost, issue 18).

The BiLSTM kernel calls ``np.dot``, which numba routes to BLAS through ``scipy.linalg.cython_blas``. When
numba loads its first kernel it imports ``numba.np.arraymath``, and that runs
``import scipy.linalg.cython_blas`` to check BLAS is there: the statement first executes
``scipy/linalg/__init__.py``, i.e. all of ``scipy.linalg`` (and what it pulls in), ≈ 0.3 s of CPU in a
``shequ parse`` process that needs none of it. The extension module itself loads in ≈ 0.04 s.

:func:`preload_cython_blas` loads that one extension from scipy's folder and registers it under its own
name, so the later import finds it in ``sys.modules`` and skips the package. It does nothing when
``scipy.linalg`` (or the module) is already imported, and on any failure it leaves everything as it was:
numba's own import then runs as before.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

_NAME = "scipy.linalg.cython_blas"


def preload_cython_blas() -> bool:
    """Load ``scipy.linalg.cython_blas`` without ``scipy.linalg``; True when this call loaded it."""
    if _NAME in sys.modules or "scipy.linalg" in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec("scipy")
        if spec is None or not spec.submodule_search_locations:
            return False
        folder = Path(next(iter(spec.submodule_search_locations))) / "linalg"
        path = next(
            (folder / f"cython_blas{sfx}" for sfx in importlib.machinery.EXTENSION_SUFFIXES
             if (folder / f"cython_blas{sfx}").exists()),
            None,
        )  # fmt: skip
        if path is None:
            return False
        ext = importlib.util.spec_from_file_location(_NAME, path)
        if ext is None or ext.loader is None:
            return False
        module = importlib.util.module_from_spec(ext)
        sys.modules[_NAME] = module
        ext.loader.exec_module(module)
    except Exception:  # noqa: BLE001  (an optimisation only: numba's normal import follows)
        sys.modules.pop(_NAME, None)
        return False
    return True
