rule meta_train:
    """MAML meta-training of one initialisation (MetaDIP or MetaSIREN); resumes from its checkpoint."""
    input:
        data=dataset_dir(CFG["meta"]["train_dataset"]),
        stamp=stamp("meta_train"),
    output:
        weights=f"{RES}/meta/{{method}}/meta_init.safetensors",
        sidecar=f"{RES}/meta/{{method}}/meta_init.json",
    params:
        **STAGE,
        config_hash=step_hash("meta_train"),
        out=lambda wc, output: os.path.dirname(output.weights),
        # N ranks: torchrun starts N data-parallel processes inside the one job (one SLURM task, N GPUs)
        launch=(
            f"-m torch.distributed.run --standalone --nproc_per_node {CFG['meta']['gpus']} "
            if CFG["meta"]["gpus"] > 1
            else ""
        ),
    log:
        f"{LOGS}/meta_train/{{method}}.log",
    benchmark:
        f"{BENCH}/meta_train/{{method}}.tsv"
    threads: CFG["meta"]["gpus"]  # a core per rank
    priority: 10  # the longest job on the critical path: start it before the independent DIP runs
    resources:
        gpu=CFG["meta"]["gpus"],
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.launch}{params.stages:q}/meta_train.py --config {params.config:q} --config-sha {params.config_sha} --method {wildcards.method} --data {input.data:q} "
        "--out {params.out:q} > {log:q} 2>&1"
