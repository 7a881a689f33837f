rule curate:
    """Curate one dataset of curate.datasets into 128x128 crops (npy shards + parquet manifest)."""
    output:
        directory(f"{CUR}/{{dataset}}"),
    params:
        **STAGE,
        config_hash=lambda wc: section_hash("curate.crop_size", "curate.shard_size", "curate.preview_crops", f"curate.datasets.{wc.dataset}", "seed"),
    log:
        f"{LOGS}/curate/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py} {params.stages}/curate.py --config {params.config} --dataset {wildcards.dataset} --out {output} > {log} 2>&1"
