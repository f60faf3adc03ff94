"""One registry for every extension point: analysis kinds, FER models, VLM backends, CLI commands.

A :class:`Registry` maps a name to an entry. Entries come from three places, all looked up the same way:

- **registration in code**: a module calls ``registry.add(name, entry)`` (usually through a decorator such as
  :func:`emoalign.analysis.kinds.base.register`) when it is imported. A registry that names ``packages``
  imports each public module of those packages on first use, so a new module dropped into
  ``emoalign/analysis/kinds/`` (or ``emoalign/raters/fer/``) is found with no list to edit;
- **lazy entries**: ``registry.add_lazy(name, "package.module:attr", **meta)`` stores the import path (and
  metadata such as a one-line help, readable with :meth:`Registry.meta` without importing anything); the module
  is imported the first time the entry is looked up (``emoalign --help`` imports no sub-command);
- **entry points** of installed distributions (third-party plug-ins): a package declares, in its own
  ``pyproject.toml``::

      [project.entry-points."emoalign.kinds"]
      my_kind = "my_package.kinds:my_kind"

  and the entry is loaded lazily, like a lazy entry. Loading it imports the module; when that import does not
  itself register the name, the loaded object is registered under the entry point's name.

The groups are ``emoalign.kinds`` (analysis kinds), ``emoalign.fer`` (FER models) and ``emoalign.backends``
(VLM backends). A name registered twice by two different modules is an error naming both (a plug-in's entry
point that takes a built-in name is found when the registry is listed: the spec model, ``spec schema``, an
unknown name). A lookup imports the built-in module named like the entry first (``fer:minixception`` imports
``raters/fer/minixception.py`` alone, VLM backend ``hf`` ``raters/vlm/hf_backend.py``), then, for other names, every module. Lookups of an unknown name say
which names exist, with a did-you-mean. Every registration bumps ``version``, so a cache
built from a registry (the spec model) can tell when a late registration makes it stale.

This module imports nothing heavy and nothing else of emoalign but ``errors``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from emoalign.errors import EmoalignError, did_you_mean

T = TypeVar("T")
_MISSING = object()


@dataclass(frozen=True)
class Lazy:
    """A placeholder for an entry not imported yet: ``target`` is ``"package.module:attr"``."""

    target: str
    origin: str  # who declared it: a module name, or "entry point <name> of <distribution>"

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


def load_target(target: str) -> Any:
    """Import ``"package.module:attr"`` (dotted attr allowed) and return the object; ``"package.module"`` returns
    the module."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Names -> entries of one extension point.

    Parameters
    ----------
    what : str
        What an entry is, for messages (``"analysis kind"``).
    group : str, optional
        Entry-point group of third-party plug-ins (``"emoalign.kinds"``).
    packages : tuple of str
        Packages whose public modules (names not starting with ``_``) register entries when imported; they are
        imported on first use. A module whose import fails because a third-party dependency is missing (no torch
        in a statistics-only install) is skipped and named when a lookup fails.
    coerce : callable, optional
        ``coerce(name, obj) -> entry``: turns what an entry point or lazy entry loads into an entry (default: the
        object itself).
    suffix : str
        Only the modules of ``packages`` whose names end with ``suffix`` register entries (``"_backend"``: entry
        ``hf`` lives in ``hf_backend.py``); the others are never imported for this registry.

    Examples
    --------
    >>> colours = Registry("colour")
    >>> colours.add("red", "#ff0000")
    '#ff0000'
    >>> colours.add_lazy("join", "os.path:join")
    >>> colours.get("join").__name__
    'join'
    >>> colours.get("rde")
    Traceback (most recent call last):
    ...
    emoalign.errors.EmoalignError: unknown colour 'rde' -- did you mean 'red'?
      hint: choose one of: red, join
    """

    def __init__(self, what: str, *, group: str | None = None, packages: tuple[str, ...] = (),
                 coerce: Callable[[str, Any], T] | None = None, suffix: str = ""):
        self.what = what
        self.suffix = suffix
        self.group = group
        self.packages = tuple(packages)
        self.coerce = coerce
        self.version = 0
        self._entries: dict[str, T | Lazy] = {}
        self._origin: dict[str, str] = {}
        self._meta: dict[str, dict] = {}
        self._discovered = False
        self._discovering = False
        #: module or entry point -> why it could not be imported (named when a lookup fails)
        self.unavailable: dict[str, str] = {}

    # ---- registration --------------------------------------------------------------------
    def add(self, name: str, entry: T, *, origin: str | None = None) -> T:
        """Register ``entry`` under ``name``; ``origin`` is the registering module (for the duplicate message).

        A lazy placeholder of the same name declared for the same module is replaced (the module's own
        registration supersedes it); so is an entry of the same origin (a module imported twice). Any other
        second registration of a name is an error naming both modules.
        """
        origin = origin or getattr(entry, "__module__", None) or "?"
        old = self._entries.get(name)
        if old is not None:
            same = (isinstance(old, Lazy) and old.module == origin) or self._origin.get(name) == origin
            if not same:
                raise EmoalignError(f"{self.what} {name!r} is registered twice: by {self._origin[name]} and by {origin}",
                                    hint=f"give one of them another name (each {self.what} name must be unique)")
        self._entries[name] = entry
        self._origin[name] = origin
        self.version += 1
        return entry

    def add_lazy(self, name: str, target: str, *, origin: str | None = None, **meta) -> None:
        """Register ``name`` as ``"package.module:attr"``, imported when first looked up; ``meta`` (e.g. ``help``)
        is readable at once with :meth:`meta`."""
        if ":" not in target:
            raise ValueError(f"lazy {self.what} target {target!r} must look like 'package.module:attr'")
        lazy = Lazy(target, origin or target.partition(":")[0])
        if name in self._entries and self._origin.get(name) != lazy.origin:
            raise EmoalignError(f"{self.what} {name!r} is registered twice: by {self._origin[name]} and by {lazy.origin}",
                                hint=f"give one of them another name (each {self.what} name must be unique)")
        self._entries[name] = lazy
        self._origin[name] = lazy.origin
        self._meta[name] = dict(meta)
        self.version += 1

    # ---- discovery -----------------------------------------------------------------------
    def discover(self) -> None:
        """Import the built-in packages' modules and declare the installed entry points (once)."""
        if self._discovered or self._discovering:
            return
        self._discovering = True
        try:
            for pkg in self.packages:
                self._import_package(pkg)
            if self.group:
                for ep in entry_points(self.group):
                    dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
                    origin, module = f"entry point {ep.name!r} of {dist}", ep.value.partition(":")[0]
                    if self._origin.get(ep.name) in (origin, module):  # declared (or loaded) before
                        continue
                    # a name another module registered is an error naming both
                    self.add_lazy(ep.name, ep.value if ":" in ep.value else f"{ep.value}:", origin=origin)
            self._discovered = True
        finally:
            self._discovering = False

    def _import_package(self, pkg: str, only: str | None = None) -> None:
        """Import the public modules of ``pkg`` named ``*<suffix>`` (``only``: just the one of entry ``only``, if
        there is one)."""
        package = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if (info.name.startswith("_") or not info.name.endswith(self.suffix)
                    or (only is not None and info.name != only + self.suffix)):
                continue
            name = f"{pkg}.{info.name}"
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] == "emoalign":
                    raise
                self.unavailable[name] = f"needs {exc.name!r}, which is not installed"

    def _find(self, name: str) -> bool:
        """Whether ``name`` is registered, looking first in the built-in module of that name (``fer:minixception``
        imports ``raters/fer/minixception.py`` only), then everywhere."""
        if name in self._entries:
            return True
        if not self._discovered and not self._discovering and isinstance(name, str) and name.isidentifier():
            for pkg in self.packages:
                self._import_package(pkg, only=name)
            if name in self._entries:
                return True
        self.discover()
        return name in self._entries

    # ---- lookup --------------------------------------------------------------------------
    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry of ``name`` (lazy entries are imported now); an unknown name raises an ``EmoalignError`` (or
        returns ``default`` when one is given, as ``dict.get``)."""
        if not self._find(name):
            if default is not _MISSING:
                return default
            raise self.unknown(name)
        entry = self._entries[name]
        if isinstance(entry, Lazy):
            entry = self._resolve(name, entry)
        return entry  # type: ignore[return-value]

    def _resolve(self, name: str, lazy: Lazy) -> T:
        try:
            obj = load_target(lazy.target)
        except Exception as exc:
            self.unavailable[lazy.origin] = f"{type(exc).__name__}: {exc}"
            raise EmoalignError(f"{self.what} {name!r} ({lazy.origin}) cannot be loaded from {lazy.target!r}: "
                                f"{type(exc).__name__}: {exc}",
                                hint="install what it needs, or uninstall the package that declares it") from exc
        current = self._entries.get(name)
        if current is not lazy and not isinstance(current, Lazy):  # importing the module registered it
            return current  # type: ignore[return-value]
        entry = self.coerce(name, obj) if self.coerce else obj
        self._entries[name] = entry
        self.version += 1
        return entry

    def unknown(self, name: str) -> EmoalignError:
        names = self.names()
        extra = ("; not loaded: " + "; ".join(f"{m} ({why})" for m, why in self.unavailable.items())
                 if self.unavailable else "")
        return EmoalignError(f"unknown {self.what} {name!r}" + did_you_mean(name, names),
                             hint=f"choose one of: {', '.join(names) or '(none registered)'}{extra}")

    def names(self) -> list[str]:
        """Registered names in registration order (built-ins first), lazy ones included."""
        self.discover()
        return list(self._entries)

    def entries(self) -> dict[str, T]:
        """Every entry, lazy ones imported; entries that cannot be loaded are left out (and listed in
        ``unavailable``)."""
        out = {}
        for name in self.names():
            try:
                out[name] = self.get(name)
            except EmoalignError:
                continue
        return out

    def meta(self, name: str) -> dict:
        """The metadata given to :meth:`add_lazy` (empty for entries registered in code), without importing."""
        if name not in self._entries and name not in self:
            raise self.unknown(name)
        return dict(self._meta.get(name, {}))

    def origin(self, name: str) -> str:
        self.discover()
        return self._origin[name]

    def is_loaded(self, name: str) -> bool:
        return name in self._entries and not isinstance(self._entries[name], Lazy)

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a temporary entry)."""
        self._entries.pop(name, None)
        self._origin.pop(name, None)
        self._meta.pop(name, None)
        self.version += 1

    def refresh(self) -> None:
        """Look for built-in modules and installed entry points again on the next lookup (after installing a
        plug-in in a running process); entries already registered stay."""
        self._discovered = False

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __setitem__(self, name: str, entry: T) -> None:
        """Replace an entry without the duplicate check (tests that swap one in, e.g. ``monkeypatch.setitem``);
        register with :meth:`add`."""
        self.discover()
        self._entries[name] = entry
        self._origin.setdefault(name, "override")
        self.version += 1

    def __delitem__(self, name: str) -> None:
        self.remove(name)

    def __contains__(self, name: object) -> bool:
        return self._find(name)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} entries)"


def plugin_coercer(entry_type: type, make: Callable[[str, Any, str], Any], *, what: str, expected: str,
                   check: Callable[[str, Any], None] | None = None) -> Callable[[str, Any], Any]:
    """A ``coerce`` for a registry whose plug-ins may name a plain callable: an ``entry_type`` is kept as it is; a
    callable becomes ``make(name, obj, description)``, described by its docstring's first line (after
    ``check(name, obj)``); anything else is an error saying the entry point should name ``expected``."""

    def coerce(name: str, obj: Any):
        if isinstance(obj, entry_type):
            return obj
        if not callable(obj):
            raise EmoalignError(f"{what} {name!r}: the entry point names {type(obj).__name__}, not {expected}",
                                hint=f"point the entry point at {expected}")
        if check is not None:
            check(name, obj)
        return make(name, obj, (obj.__doc__ or f"{what} {name} (plug-in)").strip().split("\n")[0])

    return coerce


def entry_points(group: str) -> list:
    """Installed entry points of ``group`` (a function, so tests can substitute a fake distribution's)."""
    from importlib import metadata  # imported here: it costs ~40 ms that `emoalign --help` need not pay

    return list(metadata.entry_points(group=group))


#: analysis kinds: ``emoalign/analysis/kinds/<kind>.py`` registers with ``@register``; plug-ins: ``emoalign.kinds``
KINDS: Registry = Registry("analysis kind", group="emoalign.kinds", packages=("emoalign.analysis.kinds",),
                           coerce=lambda name, obj: getattr(obj, "entry", obj))
#: FER models: ``emoalign/raters/fer/<model>.py`` registers with ``@fer_model``; plug-ins: ``emoalign.fer``
FER_MODELS: Registry = Registry("FER model", group="emoalign.fer", packages=("emoalign.raters.fer",))
#: VLM backends: ``emoalign/raters/vlm/<name>_backend.py`` registers with ``@vlm_backend``; plug-ins:
#: ``emoalign.backends``
BACKENDS: Registry = Registry("VLM backend", group="emoalign.backends", packages=("emoalign.raters.vlm",),
                              suffix="_backend")
