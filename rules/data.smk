rule curate:
    """Curate one dataset of curate.datasets into 128x128 crops (npy shards + parquet manifest)."""
    input:
        stamp=stamp("curate"),
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


localrules:
    step_stamp,


rule step_stamp:
    """A job's stamp when it is missing (the main process makes and dates them: date_stamps in common.smk)."""
    output:
        f"{STAMPS}/{{stamped}}",
    log:
        f"{LOGS}/step_stamp/{{stamped}}.log",
    wildcard_constraints:
        stamped=r"[^/]+(/[^/]+)*",
    conda:
        "../envs/metadip.yaml"
    shell:
        "touch -d @0 {output:q} > {log:q} 2>&1"
