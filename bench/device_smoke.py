"""The pipeline's GPU path, stage by stage, on a small config: curate (scikit-image photos),
meta-train MetaDIP, evaluate DIP and MetaDIP on one task of each table; prints mean PSNR per
(task, method) and the device each shard ran on. Run it on a CPU and on a GPU machine and compare:

    .venv/bin/python bench/device_smoke.py --device cpu
    python3 bench/device_smoke.py --device cuda      # on a GPU node
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--outer-steps", type=int, default=20)
    a = p.parse_args()
    cfg = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    cfg["curate"]["datasets"] = {"skimage": cfg["curate"]["datasets"]["skimage"]}
    cfg["meta"]["train_dataset"] = "skimage"
    cfg["meta"]["methods"]["metadip"]["network"]["width"] = 32
    cfg["meta"]["methods"]["metadip"]["outer"].update(
        steps=a.outer_steps, val_every=a.outer_steps, checkpoint_every=a.outer_steps
    )
    cfg["evaluate"]["roles"] = {"faces": "skimage", "natural": "skimage"}
    cfg["evaluate"]["methods"]["dip"].update(steps=200, report_at=[10, 200])
    tmp = Path(tempfile.mkdtemp(prefix="device-smoke-"))
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    py, stages = sys.executable, ROOT / "stages"

    def stage(name: str, *args: str) -> float:
        t = time.perf_counter()
        proc = subprocess.run(
            [py, str(stages / name), "--config", str(tmp / "c.yaml"), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        return time.perf_counter() - t

    data = str(tmp / "skimage")
    print(f"curate: {stage('curate.py', '--dataset', 'skimage', '--out', data):.1f} s")
    seconds = stage(
        "meta_train.py", "--method", "metadip", "--data", data, "--out", str(tmp / "meta"), "--device", a.device
    )
    print(f"meta_train ({a.outer_steps} outer steps): {seconds:.1f} s")
    print("| task | method | mean PSNR (dB) | last iterate (dB) | s / image | device |\n|---|---|---|---|---|---|")
    for task in ("den_25", "cs_4", "pr_8"):
        for method, extra in (("dip", []), ("metadip", ["--meta-init", str(tmp / "meta" / "meta_init")])):
            out = tmp / f"{task}-{method}.parquet"
            stage(
                "evaluate.py",
                "--task",
                task,
                "--dataset",
                "skimage",
                "--data",
                data,
                "--method",
                method,
                *extra,
                "--device",
                a.device,
                "--out",
                str(out),
            )
            rows = pq.read_table(out).to_pylist()
            for m in sorted({r["method"] for r in rows}):
                rs = [r for r in rows if r["method"] == m]
                psnr, last, secs = (sum(r[k] for r in rs) / len(rs) for k in ("psnr", "psnr_last", "seconds"))
                print(f"| {task} | {m} | {psnr:.2f} | {last:.2f} | {secs:.3f} | {rs[0]['device']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
