"""Meta-learning: the MetaDIP inner loop (learned step sizes, functional and batched), MAML
meta-training of a DIP or SIREN initialisation (data-parallel over ranks), and ablation variants.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AblationData": "ablation_runs",
        "InnerSettings": "inner_loop",
        "MetaModel": "inner_loop",
        "OuterSettings": "maml",
        "Ranks": "data_parallel",
        "ablation_problems": "maml",
        "adapt": "inner_loop",
        "architecture": "inner_loop",
        "batched_task_loss": "inner_loop",
        "build_model": "inner_loop",
        "curated_ablation_problems": "maml",
        "current_ranks": "data_parallel",
        "deep_merge": "ablation",
        "describe_run": "maml",
        "dip_record": "ablation_runs",
        "image_psnrs": "maml",
        "init_from_environment": "data_parallel",
        "initial_state": "inner_loop",
        "inner_update": "inner_loop",
        "leave": "data_parallel",
        "load_ablation_data": "ablation_runs",
        "inner_step": "inner_loop",
        "meta_train": "maml",
        "model_for_method": "maml",
        "overrides_text": "ablation",
        "reconstruct": "inner_loop",
        "run_variant": "ablation_runs",
        "sample_task": "maml",
        "score_tasks": "maml",
        "simulate_tasks": "maml",
        "solve": "inner_loop",
        "solve_batch": "inner_loop",
        "task_loss": "inner_loop",
        "validate": "maml",
        "validation_set": "maml",
        "variant_method": "ablation",
        "variant_summary": "ablation_runs",
    },
)
