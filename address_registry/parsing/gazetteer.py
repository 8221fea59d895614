"""Township and village / community names for the parser's gazetteer, from JioNLP's national division list.

JioNLP (Apache-2.0, a dependency) ships the five-level division list of the National Bureau of Statistics as
``jionlp/dictionary/china_location.zip``: one name per line, indented by level with tabs (province,
prefecture, county, township, village / community). The file is read directly, without importing JioNLP
(whose import loads its whole toolkit). GB/T 2260 (province to county) stays the project's own gazetteer
(``admin_lexicon.json``); this list adds the two levels below it (:func:`.features.add_towns_villages`).
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path


def source_path() -> Path:
    """The installed JioNLP division list (raises when JioNLP is not installed)."""
    spec = importlib.util.find_spec("jionlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the township / village gazetteer needs the jionlp package (pip install jionlp)")
    return Path(next(iter(spec.submodule_search_locations))) / "dictionary" / "china_location.zip"


def town_village_rows(path: Path | None = None) -> list[tuple[int, str]]:
    """(level, name) of every township (4) and village / community (5) of the list, in file order."""
    with zipfile.ZipFile(path or source_path()) as z:
        text = z.read("china_location.txt").decode("utf-8")
    rows = []
    for line in text.splitlines():
        name = line.strip().split("\t")[0]
        level = len(line) - len(line.lstrip("\t")) + 1  # province 1 … village 5
        if level >= 4 and name:
            rows.append((level, name))
    return rows
