rule ablate:
    """One ablation variant: meta-train the method with the variant's settings, score it on the
    validation split (config `ablation`; in the targets only when ablation.enabled)."""
    input:
        data=dataset_dir(CFG["meta"]["train_dataset"]),
        transfer=[dataset_dir(AB["transfer"]["dataset"])] if AB["transfer"]["dataset"] else [],
        stamp=stamp("ablate"),
    output:
        result=f"{RES}/ablation/{{variant}}/result.json",
    params:
        **STAGE,
        transfer=lambda wc, input: f"--transfer-data {shlex.quote(input.transfer[0])}" if input.transfer else "",
        config_hash=step_hash("ablate"),
        out=lambda wc, output: os.path.dirname(output.result),
    log:
        f"{LOGS}/ablate/{{variant}}.log",
    benchmark:
        f"{BENCH}/ablate/{{variant}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/ablate.py --config {params.config:q} --config-sha {params.config_sha} --variant {wildcards.variant} --data {input.data:q} {params.transfer} "
        "--out {params.out:q} > {log:q} 2>&1"


rule ablation_dip:
    """Vanilla DIP (ablation.dip) on the ablation's validation problems: what every variant is paired
    with for claim 1-quality."""
    input:
        data=dataset_dir(CFG["meta"]["train_dataset"]),
        transfer=[dataset_dir(AB["transfer"]["dataset"])] if AB["transfer"]["dataset"] else [],
        stamp=stamp("ablation_dip"),
    output:
        result=f"{RES}/ablation/dip-reference/result.json",
    params:
        **STAGE,
        transfer=lambda wc, input: f"--transfer-data {shlex.quote(input.transfer[0])}" if input.transfer else "",
        config_hash=step_hash("ablation_dip"),
        out=lambda wc, output: os.path.dirname(output.result),
    log:
        f"{LOGS}/ablate/dip-reference.log",
    benchmark:
        f"{BENCH}/ablate/dip-reference.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/ablate.py --config {params.config:q} --config-sha {params.config_sha} --dip --data {input.data:q} {params.transfer} "
        "--out {params.out:q} > {log:q} 2>&1"


localrules:
    ablation_table,


rule ablation_table:
    """The ablation table (Markdown and CSV) from every variant's result."""
    input:
        variants=[f"{RES}/ablation/{v}/result.json" for v in AB["variants"]],
        dip=[f"{RES}/ablation/dip-reference/result.json"] if AB["dip"] else [],
    output:
        markdown=f"{RES}/ablation/ablation.md",
        csv=f"{RES}/ablation/ablation.csv",
    params:
        **STAGE,
        config_hash=step_hash("ablation_table"),
        dip=lambda wc, input: f"--dip {shlex.quote(input.dip[0])}" if input.dip else "",
    log:
        f"{LOGS}/ablation_table.log",
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/ablation_table.py --config {params.config:q} --config-sha {params.config_sha} --results {input.variants:q} {params.dip} --markdown {output.markdown:q} "
        "--csv {output.csv:q} > {log:q} 2>&1"
