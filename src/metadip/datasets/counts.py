"""Source photographs and crops per split of a dataset, as the markdown table of docs/datasets.md.

:func:`planned_counts` derives them from a ``curate.datasets.<name>`` config entry with the
curation's own steps (:mod:`metadip.datasets.curate`: listing, hashing and decoding the sources,
then the split by source image) without drawing a crop; :func:`curated_counts` reads them from a
curated folder (manifest and summary). The two agree for any folder curated from that entry.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from metadip.core.markdown import between_markers, markers
from metadip.datasets.curate import SPLITS, CurationError, _assign_splits, _candidates, _largest_remainder
from metadip.datasets.store import REFETCH, CuratedDataError, load_manifest

#: {"photographs": {split: n}, "crops": {split: n}}: usable source photographs assigned to each split
#: and the crops drawn from them
Counts = dict[str, dict[str, int]]

BEGIN, END = markers("counts")


def planned_counts(name: str, dataset: dict[str, Any], crop_size: int, seed: int) -> Counts:
    """The counts a curation of ``dataset`` (validated config entry) at ``crop_size`` px and ``seed``
    produces. Reads every source image; raises :class:`CurationError` where the curation would."""
    candidates = _candidates(dataset, crop_size, [], show_progress=False)
    _assign_splits(candidates, dataset, seed, name)
    photographs = Counter(c.split for c in candidates)
    crops = {split: _crops(name, split, dataset, [c for c in candidates if c.split == split]) for split in SPLITS}
    return {"photographs": {s: photographs[s] for s in SPLITS}, "crops": crops}


def _crops(name: str, split: str, dataset: dict[str, Any], candidates: list) -> int:
    """Crops of a split as the curation draws them: the split's count shared among the sources by
    weight, one per photograph at most for a ``center`` source."""
    sources = dataset["sources"]
    pools = dict(sorted(Counter(c.source_index for c in candidates).items()))  # source index: photographs
    wanted = dataset["crops"][split]
    if wanted and not pools:
        raise CurationError(f"dataset '{name}': no usable source image for split '{split}' ({wanted} crops requested)")
    shares = _largest_remainder(wanted, [sources[si].get("weight", 1.0) for si in pools])
    return sum(
        min(k, pools[si]) if sources[si].get("mode", "patches") == "center" else k
        for si, k in zip(pools, shares, strict=True)
    )


def curated_counts(folder: str | os.PathLike) -> Counts:
    """The counts of a curated dataset folder: crops from its (checked) manifest, photographs from
    the split assignment its ``summary.json`` records (a photograph may get no crop)."""
    splits = load_manifest(folder)["split"].to_pylist()
    summary = Path(folder) / "summary.json"
    try:
        record = json.loads(summary.read_text())["source_images"]
        photographs = {s: int(record[s]) for s in SPLITS}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CuratedDataError(f"{summary}: no readable source_images record ({err!r}); {REFETCH}") from None
    return {"photographs": photographs, "crops": {s: splits.count(s) for s in SPLITS}}


def counts_table(counts: dict[str, Counts], collections: dict[str, list[str]]) -> str:
    """Markdown table, one row per dataset (in the order given); ``collections``: their sources' names."""
    lines = [
        "| dataset | sources | photographs | photographs train / val / test | crops train / val / test |",
        "|---|---|---|---|---|",
    ]
    for name, c in counts.items():
        per_split = {k: " / ".join(str(c[k][s]) for s in SPLITS) for k in c}
        lines.append(
            f"| `{name}` | {', '.join(collections[name])} | {sum(c['photographs'].values())} "
            f"| {per_split['photographs']} | {per_split['crops']} |"
        )
    return "\n".join(lines) + "\n"


def with_table(text: str, table: str, where: str) -> str:
    """``text`` (a markdown file's content, named ``where`` in errors) with ``table`` between the
    :data:`BEGIN` and :data:`END` marker lines."""
    return between_markers(text, table, "counts", where)
