"""Print, check or write the `params:` of each stage in dvc.yaml, derived from the steps' declarations
(metadip.pipeline.steps.dvc_params of config/config.yaml): DVC then reruns a stage when a key one of
its steps reads changes, and only then.

    .venv/bin/python scripts/dvc_params.py            # print what dvc.yaml should list
    .venv/bin/python scripts/dvc_params.py --check    # exit 1 when dvc.yaml differs
    .venv/bin/python scripts/dvc_params.py --write    # rewrite the lists in dvc.yaml
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from metadip.pipeline.config import DEFAULT_CONFIG, check_pipeline_config, load_config
from metadip.pipeline.steps import dvc_params

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"^  (\w+):\n(?:    .*\n|\n)*?    params:\n      - config/config\.yaml:\n((?:          - .*\n)+)", re.M
)


def synced(text: str, params: dict[str, list[str]]) -> str:
    """``text`` (dvc.yaml) with each stage's config/config.yaml params list replaced by ``params``."""

    def replace(m: re.Match) -> str:
        keys = params.get(m[1])
        if keys is None:
            raise SystemExit(f"dvc.yaml: stage '{m[1]}' has no declared steps (metadip.pipeline.steps.planned_steps)")
        return m[0][: m.start(2) - m.start(0)] + "".join(f"          - {k}\n" for k in keys)

    out, n = BLOCK.subn(replace, text)
    if n != len(params):
        raise SystemExit(f"dvc.yaml: {n} stages list config/config.yaml params, the steps give {len(params)}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml's params differ")
    p.add_argument("--write", action="store_true", help="rewrite dvc.yaml's params lists")
    a = p.parse_args(argv)
    params = dvc_params(check_pipeline_config(load_config(ROOT / DEFAULT_CONFIG)))
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    new = synced(text, params)
    if a.write:
        if new != text:
            path.write_text(new)
        return 0
    if a.check:
        if new != text:
            print("dvc.yaml: params differ from the steps' declarations; run scripts/dvc_params.py --write")
            return 1
        return 0
    for stage, keys in params.items():
        print(f"{stage}: {', '.join(keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
