rule curate:
    """Curate one dataset of curate.datasets into 128x128 crops (npy shards + parquet manifest)."""
    input:
        stamp=stamp("curate", lambda wc: dataset_dir(wc.dataset)),
    output:
        directory(f"{CUR}/{{dataset}}"),
    params:
        **STAGE,
        config_hash=step_hash("curate"),
    log:
        f"{LOGS}/curate/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/curate.py --config {params.config:q} --config-sha {params.config_sha} --dataset {wildcards.dataset} --out {output:q} > {log:q} 2>&1"
