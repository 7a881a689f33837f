"""Print the claims' verdicts per image class of a claims.json as a markdown table (the README's status,
written there from the confirmatory read only).

.venv/bin/python scripts/claims_status.py results/confirm/claims.json
.venv/bin/python scripts/claims_status.py results/confirm/claims.json --write README.md   between its claims markers
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metadip.core.atomic import write_text
from metadip.core.errors import InputError
from metadip.core.markdown import between_markers
from metadip.reporting.status import status_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("claims", help="a claims.json written by the claims stage")
    p.add_argument("--write", metavar="MARKDOWN", help="put the table between the claims markers of this file")
    a = p.parse_args(argv)
    try:
        document = json.loads(Path(a.claims).read_text(encoding="utf-8"))
        if not isinstance(document, dict) or not {"verdicts", "checks"} <= document.keys():
            raise InputError(
                f"{a.claims}: not a claims.json (no 'verdicts' and 'checks'); give the claims stage's output"
            )
        table = status_table(document)
        label = (document.get("read") or {}).get("label")
        if a.write and label != "confirmatory":
            raise InputError(
                f"{a.claims}: a {label or 'non-ledgered'} read; --write takes a confirmatory read "
                "(claims.confirmatory: true, docs/evaluation-protocol.md), print it without --write"
            )
        if a.write:
            write_text(a.write, between_markers(Path(a.write).read_text(encoding="utf-8"), table, "claims", a.write))
    except (InputError, OSError, json.JSONDecodeError) as err:
        print(f"claims_status: {err}", file=sys.stderr)
        return 1
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
