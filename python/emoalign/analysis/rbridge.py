"""One embedded R session (rpy2), started lazily, with the project's ``R/*.R`` functions sourced.

``get_r()`` returns the process-wide :class:`RBridge`; the first call starts R (~0.3 s), loads
nothing else, and sources every file of ``R/``. ``RBridge.call("fit_lmm", df, formula=...)`` sends
the data frame (numbers as numeric, strings/categoricals as **factors**: fast, and what lme4 wants),
runs the function inside ``emoalign_call`` (``R/bridge.R``) which captures every R warning and
message (lme4 convergence / singularity notes) and returns them as Python lists instead of letting
them reach stderr. R errors become :class:`RCallError` with R's message.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emoalign.errors import EmoalignError
from emoalign.resources import r_dir

_LOCK = threading.Lock()
_BRIDGE: "RBridge | None" = None


class RCallError(EmoalignError):
    """An R function called through the bridge stopped with an error (message is R's)."""


@dataclass
class RCall:
    """Result of :meth:`RBridge.call`: the converted value plus captured warnings and messages."""

    value: Any
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def r_available() -> bool:
    """True when rpy2 imports and R can be started (does not start R)."""
    try:
        import rpy2  # noqa: F401
    except Exception:
        return False
    return True


class RBridge:
    """The embedded R session. Use :func:`get_r` rather than constructing one."""

    def __init__(self) -> None:
        # rpy2 prepends R's and the system's library folders to LD_LIBRARY_PATH when R starts. That is
        # too late to matter for this process, but every Python subprocess started afterwards (report
        # kernel, inference runs) would then load the system libpython instead of its own and fail.
        ld_before = os.environ.get("LD_LIBRARY_PATH")
        try:
            import rpy2.rinterface_lib.callbacks as callbacks
            import rpy2.robjects as ro
        except Exception as exc:  # ImportError, or R shared library not found
            raise EmoalignError(f"R is not available through rpy2: {exc}",
                                hint="install R (>= 4.2) with lme4 and lmerTest, then `pip install rpy2==3.5.17`") from exc
        finally:
            if ld_before is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = ld_before
        self._ro = ro
        # keep R console output off stderr; anything that still escapes emoalign_call lands here
        self.console: deque[str] = deque(maxlen=500)
        callbacks.consolewrite_warnerror = lambda s: self.console.append(s)
        callbacks.consolewrite_print = lambda s: self.console.append(s)
        for path in sorted(r_dir().glob("*.R")):
            ro.r["source"](str(path))
        self._call = ro.globalenv["emoalign_call"]
        # R's OpenBLAS runs one thread: two threads did not speed up the paper-size lme4 fits (18.6 vs 18.1 s), and
        # forked workers with a thread pool each (call_each) oversubscribe the cores (27 s vs 7.4 s). A user's
        # OPENBLAS_NUM_THREADS is respected outside call_each.
        self._blas = self._r_blas_pools()
        if self._blas is not None and not os.environ.get("OPENBLAS_NUM_THREADS"):
            self._blas.limit(limits=1)

    # ---- conversion -------------------------------------------------------------------------
    def to_r(self, obj: Any):
        """Convert a Python value to R: DataFrame -> data.frame and Series -> vector (strings as factors),
        2-D ndarray -> numeric matrix, dict -> named list, scalars and lists -> vectors."""
        ro = self._ro
        if obj is None:
            return ro.NULL
        if isinstance(obj, pd.DataFrame):
            return self._df_to_r(obj)
        if isinstance(obj, pd.Series):
            return self._column_to_r(obj)
        if isinstance(obj, np.ndarray) and obj.ndim == 2:
            m = ro.r["matrix"](ro.FloatVector(np.asarray(obj, dtype=float).ravel(order="F")),
                               nrow=obj.shape[0], ncol=obj.shape[1])
            return m
        if isinstance(obj, dict):
            return ro.ListVector({str(k): self.to_r(v) for k, v in obj.items()})
        if isinstance(obj, bool):
            return ro.BoolVector([obj])
        if isinstance(obj, (int, np.integer)):
            return ro.IntVector([int(obj)])
        if isinstance(obj, (float, np.floating)):
            return ro.FloatVector([float(obj)])
        if isinstance(obj, str):
            return ro.StrVector([obj])
        if isinstance(obj, (list, tuple)):
            if all(isinstance(x, str) for x in obj):
                return ro.StrVector(list(obj))
            return ro.FloatVector([float(x) for x in obj])
        raise TypeError(f"cannot send {type(obj).__name__} to R")

    def _column_to_r(self, s: pd.Series):
        ro = self._ro
        if pd.api.types.is_bool_dtype(s):
            return ro.BoolVector(s.to_numpy())
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            return ro.FloatVector(s.to_numpy(dtype=float, na_value=np.nan))
        cat = s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("string").astype("category")
        cat = cat.cat.remove_unused_categories()
        codes = cat.cat.codes.to_numpy().astype(np.int32) + 1  # int32: rpy2 copies it as one block (int64: per element)
        codes_r = ro.IntVector(codes)
        if (codes == 0).any():  # NaN -> NA_integer_
            codes_r = ro.r["replace"](codes_r, ro.IntVector(np.flatnonzero(codes == 0) + 1), ro.NA_Integer)
        fac = ro.r["structure"](codes_r, levels=ro.StrVector([str(c) for c in cat.cat.categories]),
                                **{"class": ro.StrVector(["factor"])})
        return fac

    def _df_to_r(self, df: pd.DataFrame):
        ro = self._ro
        cols = {str(c): self._column_to_r(df[c]) for c in df.columns}
        return ro.r["data.frame"](**cols, stringsAsFactors=False, check_names=False) if cols else ro.r["data.frame"]()

    def to_py(self, obj: Any) -> Any:
        """Convert an R value back: data.frame -> DataFrame, vectors -> list/scalar, NULL -> None."""
        from rpy2 import rinterface as ri

        ro = self._ro
        if obj is ro.NULL or isinstance(obj, type(ri.NULL)):
            return None
        if isinstance(obj, ro.vectors.DataFrame):
            data = {}
            for name, col in zip(obj.names, obj):
                data[name] = self._vector_to_np(col)
            return pd.DataFrame(data)
        if isinstance(obj, ro.vectors.ListVector):
            names = list(obj.names) if obj.names is not ro.NULL else [str(i) for i in range(len(obj))]
            return {n: self.to_py(v) for n, v in zip(names, obj)}
        if isinstance(obj, ro.vectors.Vector):
            arr = self._vector_to_np(obj)
            return arr.tolist()
        return obj

    def _vector_to_np(self, v) -> np.ndarray:
        ro = self._ro
        if isinstance(v, ro.vectors.FactorVector):
            levels = np.array(list(v.levels), dtype=object)
            codes = np.asarray(list(v), dtype=np.int64)
            out = np.full(len(codes), None, dtype=object)
            ok = codes > 0
            out[ok] = levels[codes[ok] - 1]
            return out
        if isinstance(v, ro.vectors.StrVector):
            return np.array([None if x is ro.NA_Character else str(x) for x in v], dtype=object)
        if isinstance(v, ro.vectors.BoolVector):
            return np.array([None if x is ro.NA_Logical else bool(x) for x in v], dtype=object)
        if isinstance(v, ro.vectors.IntVector):
            a = np.asarray(v, dtype=float)
            a[np.asarray(v) == ro.NA_Integer] = np.nan
            return a
        return np.asarray(v, dtype=float)

    # ---- calls ------------------------------------------------------------------------------
    def call(self, fun: str, *args: Any, **kwargs: Any) -> RCall:
        """Call R function ``fun`` (from ``R/*.R`` or any attached package) with converted arguments.

        Returns :class:`RCall` (value converted back to Python, warnings, messages); raises
        :class:`RCallError` when R stops with an error.
        """
        with _LOCK:
            return self._call_unlocked(fun, args, kwargs)

    def _call_unlocked(self, fun: str, args: tuple, kwargs: dict) -> RCall:
        return self._unpack(fun, self._call(self._ro.r[fun], self._arglist(args, kwargs)))

    def call_each(self, fun: str, calls: list[tuple[tuple, dict]], workers: int | None = None,
                  packages: tuple[str, ...] = ()) -> list[RCall]:
        """``call(fun, *args, **kwargs)`` for each ``(args, kwargs)`` of ``calls``, in up to ``workers`` forked
        copies of this process and its R session (Unix; each runs R's BLAS on one thread). Independent fits (the
        dimensions of a variance decomposition) then run side by side on separate cores, with results identical
        to calling them in turn. ``workers`` defaults to :func:`r_workers`; ``packages`` (R packages ``fun`` uses)
        are loaded first, so the workers do not load them each. Results in the order of ``calls``; the first R
        error raises :class:`RCallError`.

        The fork is Python's (``multiprocessing``), not R's ``parallel::mclapply``: R's fork leaves the child's
        Python interpreter lock with whichever thread held it, and rpy2's event callback then waits for it forever.
        """
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        workers = min(r_workers() if workers is None else workers, len(calls))
        with _LOCK:
            for p in packages:
                self._ro.r["loadNamespace"](p)
            if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
                return [self._call_unlocked(fun, a, k) for a, k in calls]
            global _FORKED
            limit = self._blas.limit(limits=1) if self._blas is not None else None  # one thread per worker
            _FORKED = (self, fun, calls)
            try:
                with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                    out = list(pool.map(_forked_call, range(len(calls))))
            except BrokenProcessPool as exc:
                raise RCallError(f"an R worker process failed while running {fun}(): {exc}",
                                 hint="run with EMOALIGN_R_WORKERS=1 to fit in this process") from None
            finally:
                _FORKED = None
                if limit is not None:
                    limit.restore_original_limits()
        for res in out:
            if isinstance(res, tuple):  # an R error in a worker
                raise RCallError(res[0], hint=res[1])
        return out

    def _r_blas_pools(self):
        """threadpoolctl's controller of the BLAS R loaded (OpenBLAS; not numpy's own copy), or None (R's reference
        BLAS or Accelerate have no thread pool it controls)."""
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        # Debian's libblas.so.3 / liblapack.so.3 are shims beside the OpenBLAS library that holds the thread pool
        dirs = {os.path.dirname(os.path.realpath(p)) for p in self._ro.r('c(La_library(), extSoftVersion()["BLAS"])') if p}
        ctl = ThreadpoolController()
        ctl = ctl.select(filepath=[lc.filepath for lc in ctl.lib_controllers
                                   if lc.user_api == "blas" and os.path.dirname(os.path.realpath(lc.filepath)) in dirs])
        return ctl if ctl.lib_controllers else None

    def blas_threads(self) -> int | None:
        """Threads of R's BLAS (None when it has no pool threadpoolctl controls)."""
        return None if self._blas is None else max(lc.num_threads for lc in self._blas.lib_controllers)

    def _arglist(self, args: tuple, kwargs: dict):
        ro = self._ro
        rargs = [self.to_r(a) for a in args]
        rkw = {k: self.to_r(v) for k, v in kwargs.items() if v is not None}
        return ro.r["list"](*rargs, **rkw)

    def _unpack(self, fun: str, res) -> RCall:
        ro = self._ro
        out = dict(zip(res.names, res))
        warnings = [str(x) for x in out["warnings"]]
        messages = [str(x) for x in out["messages"]]
        err = out["error"][0]
        if err is not ro.NA_Character:
            raise RCallError(f"R error in {fun}(): {err}",
                             hint="check the formula, reference levels and the data the analysis selects")
        return RCall(self.to_py(out["result"]), warnings, messages)

    def eval(self, code: str) -> Any:
        """Evaluate R code and convert the value back (for versions, checks; not for user input)."""
        with _LOCK:
            return self.to_py(self._ro.r(code))

    def versions(self, packages: tuple[str, ...] = ("lme4", "lmerTest", "Matrix", "pbkrtest", "emmeans", "irr")) -> dict:
        """R version string, installed versions of ``packages`` (None when absent) and the BLAS/LAPACK R
        runs on (``extSoftVersion()["BLAS"]``, ``La_library()``: e.g. the reference BLAS, OpenBLAS, or
        Accelerate/vecLib on macOS), which sets the speed of the lme4 fits."""
        ver = self.eval("R.version.string")[0]
        vals = self.call("emoalign_package_versions", list(packages)).value
        blas = self.eval('c(unname(extSoftVersion()["BLAS"]), La_library(), La_version())')
        return {"R": ver, "R_packages": {p: (None if v is None or v == "NA" else v) for p, v in zip(packages, vals)},
                "R_BLAS": blas[0] or None, "R_LAPACK": f"{blas[1]} ({blas[2]})" if blas[1] else blas[2],
                "R_BLAS_threads": self.blas_threads(), "R_workers": r_workers()}

    def has_package(self, name: str) -> bool:
        with _LOCK:
            return bool(self._ro.r(f'isTRUE(suppressWarnings(requireNamespace("{name}", quietly = TRUE)))')[0])


_FORKED: "tuple[RBridge, str, list] | None" = None  # what call_each's forked workers run (inherited, not pickled)


def _forked_call(i: int):
    """One call of :meth:`RBridge.call_each` in a forked worker (its copy of the bridge, without the lock the
    parent holds); an error is returned, to be raised by the parent."""
    bridge, fun, calls = _FORKED
    args, kwargs = calls[i]
    try:
        return bridge._call_unlocked(fun, args, kwargs)
    except RCallError as exc:
        return (str(exc).split("\n  hint: ")[0], exc.hint)


def r_workers() -> int:
    """How many forked R workers :meth:`RBridge.call_each` uses: ``EMOALIGN_R_WORKERS`` when set (1 = one fit at
    a time), else the CPU cores this process may use; on macOS 1 unless set (Accelerate and the Objective-C
    runtime are not safe to use in a forked child)."""
    env = os.environ.get("EMOALIGN_R_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise EmoalignError(f"EMOALIGN_R_WORKERS={env!r} is not a whole number",
                                hint="set it to the number of R worker processes, e.g. 2 (1: no parallel fits)") from None
    if sys.platform == "darwin":
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def get_r() -> RBridge:
    """The process-wide R session (started on first use)."""
    global _BRIDGE
    if _BRIDGE is None:
        with _LOCK:
            if _BRIDGE is None:
                os.environ.setdefault("LANG", "C.UTF-8")
                _BRIDGE = RBridge()
    return _BRIDGE


class LazyR:
    """Stand-in passed to kinds: starts R only when a kind actually calls it."""

    def __getattr__(self, name: str):
        return getattr(get_r(), name)
