"""What the workflow's stages call: the validated config, the evaluation plan, the evaluation of
one shard, and the verified artifacts (meta-inits, denoisers: safetensors + JSON sidecar).

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ArtifactError": "artifacts",
        "ConfigError": "config",
        "Outcome": "evaluation",
        "applies": "plan",
        "artifact_paths": "artifacts",
        "behaviour_fields": "artifacts",
        "behaviour_sha256": "artifacts",
        "build_runner": "evaluation",
        "canonical_json": "artifacts",
        "check_pipeline_config": "config",
        "decode_image": "evaluation",
        "dip_method_id": "plan",
        "evaluate_shard": "evaluation",
        "evaluation_jobs": "plan",
        "fail": "stage",
        "git_commit": "artifacts",
        "load_config": "config",
        "load_denoiser": "artifacts",
        "load_meta_init": "artifacts",
        "measure_image": "evaluation",
        "method_ids": "plan",
        "package_versions": "artifacts",
        "pnp_grid_key": "plan",
        "read_sidecar": "artifacts",
        "report_steps": "plan",
        "save_denoiser": "artifacts",
        "save_meta_init": "artifacts",
        "setting_operator": "evaluation",
        "shard_config_hash": "settings",
        "shard_settings": "settings",
        "method_settings": "settings",
        "ShardSettings": "settings",
        "DIPMethod": "settings",
        "MetaMethod": "settings",
        "PnPMethod": "settings",
        "DenoiserMethod": "settings",
        "shard_indices": "plan",
        "stage_parser": "stage",
        "tables_of": "plan",
        "tasks_of": "plan",
        "validate_config": "config",
        "validate_definition": "config",
        "workflow_config": "config",
        "write_rows": "evaluation",
    },
)
