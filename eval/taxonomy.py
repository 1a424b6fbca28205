"""The versioned emotion wheel and the mapping of free-form emotion words onto its levels.

Level 1 is primary (joy, anger, ...), level 2 secondary (cheerfulness, rage, ...), level 3 tertiary
(happiness, fury, ...). A word maps through its word forms and synonyms (`happy` -> happiness ->
cheerfulness -> joy); a word the wheel does not know maps to itself at every level, so it matches
only the same word, and is counted as unmapped.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from importlib import resources
from pathlib import Path

import yaml

DEFAULT_WHEEL = "emotion_wheel_v1"
LEVELS = (1, 2, 3)


class TaxonomyError(ValueError):
    """A wheel file that breaks the format; names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class Node:
    primary: str
    secondary: str
    tertiary: str

    def at(self, level: int) -> str:
        return (self.primary, self.secondary, self.tertiary)[level - 1]


def normalise(word: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z\s-]", " ", word.lower())).strip()


@dataclasses.dataclass(frozen=True)
class EmotionWheel:
    version: str
    index: dict[str, Node]
    """normalised word form -> its tertiary node."""

    def lookup(self, word: str) -> Node | None:
        return self.index.get(normalise(word))

    def map_set(self, words, level: int) -> tuple[set[str], int]:
        """(the words' classes at `level`, how many words the wheel did not know)."""
        classes: set[str] = set()
        unmapped = 0
        for word in words:
            node = self.lookup(word)
            if node is None:
                unmapped += 1
                classes.add("?" + normalise(word))  # matches only the same unknown word
            else:
                classes.add(node.at(level))
        return classes, unmapped

    def nodes(self) -> set[Node]:
        return set(self.index.values())


def load_wheel(source: str | Path = DEFAULT_WHEEL) -> EmotionWheel:
    """A shipped wheel by name (`emotion_wheel_v1`) or a YAML file path in the same format."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        text, where = path.read_text(), str(path)
    else:
        text = resources.files("emoreason.eval.wheels").joinpath(f"{source}.yaml").read_text()
        where = f"emoreason/eval/wheels/{source}.yaml"
    return _parse(yaml.safe_load(text), where)


@functools.lru_cache(maxsize=4)
def shipped_wheel(name: str = DEFAULT_WHEEL) -> EmotionWheel:
    return load_wheel(name)


def _parse(data, where: str) -> EmotionWheel:
    if not isinstance(data, dict) or not isinstance(data.get("version"), str) or not isinstance(data.get("tree"), dict):
        raise TaxonomyError(f"{where}: expected a mapping with `version` (string) and `tree` (primary -> secondary -> tertiary)")
    index: dict[str, Node] = {}
    for primary, secondaries in data["tree"].items():
        if not isinstance(secondaries, dict):
            raise TaxonomyError(f"{where}: tree.{primary}: expected secondary emotions as a mapping")
        for secondary, tertiaries in secondaries.items():
            if not isinstance(tertiaries, dict):
                raise TaxonomyError(f"{where}: tree.{primary}.{secondary}: expected tertiary emotions as a mapping")
            for tertiary, forms in tertiaries.items():
                if not isinstance(forms, list | type(None)):
                    raise TaxonomyError(f"{where}: tree.{primary}.{secondary}.{tertiary}: expected a list of word forms")
                node = Node(primary, secondary, tertiary)
                for form in [tertiary, *(forms or [])]:
                    key = normalise(str(form))
                    if key in index and index[key] != node:
                        raise TaxonomyError(f"{where}: word form {form!r} maps to both {index[key]} and {node}")
                    index[key] = node
    return EmotionWheel(version=data["version"], index=index)
