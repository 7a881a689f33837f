"""One rank of a data-parallel meta-training run for tests/meta/test_data_parallel.py (run by torchrun).

Usage: data_parallel_worker.py OUT_DIR TASK_BATCHING [STOP_AFTER]; every rank writes its final
state to OUT_DIR/rank<r>.safetensors.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' builders

from builders import images, outer, tiny_model
from safetensors.torch import save_file

from metadip.meta.data_parallel import init_from_environment, leave
from metadip.meta.maml import meta_train


def main() -> None:
    out, batching = Path(sys.argv[1]), sys.argv[2]
    stop_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    ranks, _ = init_from_environment("cpu")
    settings = outer(meta_batch=4, task_batching=batching, first_order=True)
    model = meta_train(
        tiny_model(),
        settings,
        images(),
        images(seed=1),
        0,
        out / "work",
        device="cpu",
        show_progress=False,
        stop_after=stop_after,
        ranks=ranks,
    )
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"rank{ranks.rank}.safetensors")
    leave()


if __name__ == "__main__":
    main()
