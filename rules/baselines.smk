rule train_denoiser:
    """Train DRUNet on the meta-training dataset (or convert official weights when configured)."""
    input:
        data=dataset_dir(CFG["meta"]["train_dataset"]),
        stamp=stamp("train_denoiser"),
    output:
        weights=DRUNET,
        sidecar=f"{RES}/denoisers/drunet.json",
    params:
        **STAGE,
        config_hash=step_hash("train_denoiser"),
        out=lambda wc, output: os.path.dirname(output.weights),
    log:
        f"{LOGS}/train_denoiser.log",
    benchmark:
        f"{BENCH}/train_denoiser.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/train_denoiser.py --config {params.config:q} --config-sha {params.config_sha} --data {input.data:q} --out {params.out:q} > {log:q} 2>&1"


rule tune_pnp:
    """3x3x3 PnP-ADMM grid search for one CS/PR task and denoiser on validation images."""
    input:
        data=dataset_dir(CFG["meta"]["train_dataset"]),
        weights=lambda wc: DRUNET if wc.denoiser == "drunet" else [],
        stamp=stamp("tune_pnp"),
    output:
        f"{RES}/pnp/{{task}}_{{denoiser}}.json",
    params:
        **STAGE,
        config_hash=step_hash("tune_pnp"),
        weights=lambda wc, input: f"--weights {shlex.quote(input.weights)}" if wc.denoiser == "drunet" else "",
    log:
        f"{LOGS}/tune_pnp/{{task}}_{{denoiser}}.log",
    benchmark:
        f"{BENCH}/tune_pnp/{{task}}_{{denoiser}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/tune_pnp.py --config {params.config:q} --config-sha {params.config_sha} --data {input.data:q} --task {wildcards.task} "
        "--denoiser {wildcards.denoiser} {params.weights} --out {output:q} > {log:q} 2>&1"


rule dip_stop:
    """A dip method on validation crops of one (task setting, class): the step its rows are also read at."""
    input:
        data=lambda wc: dataset_dir(stop_dataset(CFG, wc.method, wc.dataset)),
        stamp=stamp("dip_stop"),
    output:
        f"{RES}/dip_stop/{{task}}/{{dataset}}/{{method}}.json",
    params:
        **STAGE,
        config_hash=step_hash("dip_stop"),
    log:
        f"{LOGS}/dip_stop/{{task}}/{{dataset}}/{{method}}.log",
    benchmark:
        f"{BENCH}/dip_stop/{{task}}/{{dataset}}/{{method}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/dip_stop.py --config {params.config:q} --config-sha {params.config_sha} --task {wildcards.task} "
        "--dataset {wildcards.dataset} --method {wildcards.method} --data {input.data:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
