"""Named registries with metadata (activations, optimizers, schedules, datasets, tasks).

One table per kind drives the validation messages, the CLI help, the docs and the tests
parametrized over every entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trainwell.errors import ConfigError

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry:
    """One registered item: its canonical name, the object, a one-line description, metadata."""

    name: str
    obj: Any
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A name → :class:`Entry` table.

    Example:
        >>> ACTS = Registry("activation")
        >>> @ACTS.register("relu", description="max(0, z)")
        ... def relu(): ...
        >>> ACTS.get("relu").description
        'max(0, z)'
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: Any = None, *, description: str = "",
                 aliases: tuple[str, ...] = (), **meta: Any) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` it works as a decorator."""

        def add(o: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, o, description, dict(meta))
            for alias in aliases:
                self._aliases[alias] = name
            return o

        if obj is None:
            return add
        return add(obj)

    def canonical(self, name: str) -> str | None:
        key = str(name).strip().lower().replace("-", "_")
        if key in self._entries:
            return key
        return self._aliases.get(key)

    def get(self, name: str, field: str | None = None) -> Entry:
        """The entry for ``name`` (case-insensitive, aliases allowed).

        Raises:
            ConfigError: naming ``field`` (default: the registry kind) and every valid name.
        """
        key = self.canonical(name) if isinstance(name, str) else None
        if key is None:
            raise ConfigError(field or self.kind, name, self.names())
        return self._entries[key]

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, Entry]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

