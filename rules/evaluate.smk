rule evaluate:
    """One method on one shard of one (task setting, dataset): a parquet file of per-image rows."""
    input:
        unpack(get_evaluation_inputs),
    output:
        f"{RES}/eval/{{task}}/{{dataset}}/{{method}}/shard-{{shard}}.parquet",
    params:
        **STAGE,
        config_hash=step_hash("evaluate"),
        artifacts=get_artifact_args,
    log:
        f"{LOGS}/evaluate/{{task}}/{{dataset}}/{{method}}/shard-{{shard}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{task}}/{{dataset}}/{{method}}/shard-{{shard}}.tsv"
    threads: 1
    resources:
        gpu=lambda wc: int(EV["methods"][wc.method]["kind"] in ("dip", "meta")),
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/evaluate.py --config {params.config:q} --config-sha {params.config_sha} --task {wildcards.task} --dataset {wildcards.dataset} "
        "--data {input.data:q} --method {wildcards.method} --shard {wildcards.shard} {params.artifacts} "
        "--threads {threads} --out {output:q} > {log:q} 2>&1"
