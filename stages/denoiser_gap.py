"""Stage: trained DRUNets against BM3D on the validation split of curated datasets — PSNR per
denoiser, dataset and noise level with the paired difference to the reference (BM3D, or one of the
DRUNets: --reference LABEL; 95% interval over source photographs), as JSON and a Markdown table.
The test split is refused: this chooses the recipe."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from metadip.core.atomic import write_texts
from metadip.core.errors import InputError
from metadip.datasets.sampling import load_evaluation_set
from metadip.models.denoisers import DRUNetDenoiser, bm3d_denoise
from metadip.pipeline.artifacts import load_denoiser
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.reporting.denoiser_gap import denoiser_psnr, gap_rows, to_markdown

BM3D = "bm3d"


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--data", nargs="+", required=True, help="curated dataset folders (their val splits are scored)")
    p.add_argument(
        "--weights", nargs="+", required=True, help="DRUNet artifacts as LABEL=PATH (stem, .safetensors or .json)"
    )
    p.add_argument(
        "--self-ensemble", action="store_true", help="also score each DRUNet averaged over 8 rotations/flips (LABEL+x8)"
    )
    p.add_argument("--reference", default=BM3D, help="label the differences are taken to (default: %(default)s)")
    p.add_argument("--sigmas", nargs="+", type=float, default=[15.0, 25.0], help="noise levels, 0-255 scale")
    p.add_argument("--images", type=int, default=16, help="validation images per dataset, interleaved over photographs")
    p.add_argument("--min-photos", type=int, default=2, help="refuse fewer distinct photographs per dataset")
    p.add_argument("--out", required=True, help="output: JSON rows")
    p.add_argument("--markdown", required=True, help="output: Markdown table")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        size = config["meta"]["image_size"]
        denoisers = {}
        for spec in a.weights:
            label, sep, path = spec.partition("=")
            if not sep or not label or label == BM3D:
                raise InputError(f"--weights {spec!r}: give LABEL=PATH with a label other than '{BM3D}'")
            net = load_denoiser(path, channels=3)
            denoisers[label] = DRUNetDenoiser(net, "cpu")
            if a.self_ensemble:
                denoisers[f"{label}+x8"] = DRUNetDenoiser(net, "cpu", self_ensemble=True)
        labels = [BM3D, *denoisers]
        if a.reference not in labels:
            raise InputError(f"--reference {a.reference!r}: not one of the denoisers ({', '.join(labels)}); name one")
        sets = {
            Path(d).name: load_evaluation_set(
                d,
                "val",
                a.images,
                a.min_photos,
                size,
                key="--images",
                photos_key="--min-photos",
                crop_size=config["curate"]["crop_size"],
            )
            for d in a.data
        }
    except INPUT_ERRORS as err:
        return fail("denoiser_gap", err)
    rows = []
    for dataset, val in sets.items():
        scores = denoiser_psnr(
            val.images, a.sigmas, {BM3D: lambda x, s: bm3d_denoise(x, s, "np"), **denoisers}, config["seed"]
        )
        rows += gap_rows(scores, val.sources, dataset, a.reference)
    table = to_markdown(rows, a.reference)
    record = {"images_per_dataset": a.images, "reference": a.reference, "rows": rows}
    try:
        write_texts({a.out: json.dumps(record, indent=1) + "\n", a.markdown: table})
    except OSError as err:
        return fail("denoiser_gap", err)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
