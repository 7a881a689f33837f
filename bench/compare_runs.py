"""Row by row, how far one pipeline run's PSNRs are from another's (e.g. compiled against eager steps).

Rows are paired by (task, dataset, method, image id). Printed per method: the rows paired, how many
have the same PSNR and how many the same estimate (its stored 8-bit image, byte for byte), the mean
difference B − A and the mean and largest absolute difference of PSNR (dB).

Run:  .venv/bin/python bench/compare_runs.py A/results.parquet B/results.parquet
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import pyarrow.parquet as pq

KEY = ("task", "dataset", "method", "image_id")


def rows_of(path: str) -> dict[tuple, tuple[float, bytes]]:
    """(task, dataset, method, image id) → (PSNR, estimate bytes) of a gathered results.parquet."""
    table = pq.read_table(path, columns=[*KEY, "psnr", "estimate"]).to_pylist()
    return {tuple(r[k] for k in KEY): (r["psnr"], r["estimate"]) for r in table}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the reference run's results.parquet")
    p.add_argument("b", help="the other run's results.parquet")
    args = p.parse_args()
    a, b = rows_of(args.a), rows_of(args.b)
    diffs: dict[str, list[float]] = defaultdict(list)
    same_image: dict[str, int] = defaultdict(int)
    for key in sorted(a.keys() & b.keys()):
        diffs[key[2]].append(b[key][0] - a[key][0])
        same_image[key[2]] += b[key][1] == a[key][1]
    print(f"rows: {len(a)} in A, {len(b)} in B, {sum(map(len, diffs.values()))} paired")
    print("\n| method | rows | same PSNR | same estimate | mean B − A (dB) | mean abs (dB) | largest abs (dB) |")
    print("|---|---|---|---|---|---|---|")
    for method, d in sorted(diffs.items()):
        same = sum(v == 0 for v in d)
        mean_abs, largest = statistics.fmean(map(abs, d)), max(map(abs, d))
        row = f"| {method} | {len(d)} | {same} | {same_image[method]} | {statistics.fmean(d):+.3f} | {mean_abs:.3f} |"
        print(f"{row} {largest:.3f} |")


if __name__ == "__main__":
    main()
