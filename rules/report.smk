# the DVC views' files: one per task setting and image class (metadip.reporting.dvc_views)
SETTINGS = [f"{task}_{role}" for task in EV["tasks"] for role in EV["roles"]]


localrules:
    aggregate,
    claims,
    pnp_table,
    render,


rule aggregate:
    """All shards -> results.parquet, the headline summary, the means, the convergence CSV and the DVC
    plots (a CSV per task setting and image class: mean PSNR per step, a line per method)."""
    input:
        shards=[shard_path(job) for job in EVAL_JOBS],
        stamp=stamp("aggregate"),
    output:
        results=f"{RES}/results.parquet",
        summary=f"{RES}/summary.json",
        means=f"{RES}/means.csv",
        convergence=f"{RES}/convergence.csv",
        plots=[f"{RES}/plots/{setting}.csv" for setting in SETTINGS],
    params:
        **STAGE,
        config_hash=step_hash("aggregate"),
        plots=lambda wc, output: os.path.dirname(output.plots[0]),
    log:
        f"{LOGS}/aggregate.log",
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/aggregate.py --config {params.config:q} --config-sha {params.config_sha} --shards {input.shards:q} --results {output.results:q} "
        "--summary {output.summary:q} --means {output.means:q} --convergence {output.convergence:q} --plots {params.plots:q} > {log:q} 2>&1"


rule claims:
    """The claims' verdicts from the shards of the methods they name only (no baseline needed):
    `snakemake claims` reads them before, or without, the rest of the evaluation. Also the DVC
    metrics: per task setting and image class, the checks' verdict counts and the headline gap."""
    input:
        shards=[shard_path(job) for job in claim_jobs(CFG)],
        protocol=PROTOCOL,
        stamp=stamp("claims"),
    output:
        json=f"{RES}/claims.json",
        md=f"{RES}/claims.md",
        metrics=[f"{RES}/metrics/{name}.json" for name in ["all", *SETTINGS]],
    params:
        **STAGE,
        config_hash=step_hash("claims"),
        prefix=lambda wc, output: os.path.splitext(output.json)[0],
        metrics=lambda wc, output: os.path.dirname(output.metrics[0]),
        ledger=f"--ledger {shlex.quote(LEDGER)}" if CFG["claims"]["confirmatory"] else "",
    log:
        f"{LOGS}/claims.log",
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/claims.py --config {params.config:q} --config-sha {params.config_sha} --shards {input.shards:q} --out {params.prefix:q} "
        "--metrics {params.metrics:q} --protocol {input.protocol:q} {params.ledger} > {log:q} 2>&1"


rule pnp_table:
    """PnP-ADMM's tuned settings with every grid searched (Markdown, CSV)."""
    input:
        PNP_GRIDS,
    output:
        md=report(f"{RES}/tables/pnp_tuning.md", category="Tables", caption="../report/pnp_tuning.rst"),
        csv=f"{RES}/tables/pnp_tuning.csv",
    params:
        py=STAGE["py"],
        stages=STAGE["stages"],
    log:
        f"{LOGS}/pnp_table.log",
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/pnp_table.py --tuning {input:q} --markdown {output.md:q} --csv {output.csv:q} > {log:q} 2>&1"


rule render:
    """Tables 1-3 (Markdown, LaTeX, CSV) and Figures 2-5."""
    input:
        results=f"{RES}/results.parquet",
        data=[dataset_dir(d) for d in sorted(set(EV["roles"].values()))],
        stamp=stamp("render"),
    output:
        tables=[report(f"{RES}/tables/table{t}.{ext}", category="Tables", caption="../report/table.rst")
                for t in tables_of(CFG) for ext in ("md", "tex", "csv")],
        figures=[report(f"{RES}/figures/figure{n}.png", category="Figures", caption=f"../report/figure{n}.rst")
                 for n in [2] + [t + 2 for t in tables_of(CFG)]],
    params:
        **STAGE,
        config_hash=step_hash("render"),
        curated=lambda wc, input: os.path.dirname(input.data[0]),
        tables=lambda wc, output: os.path.dirname(output.tables[0]),
        figures=lambda wc, output: os.path.dirname(output.figures[0]),
    log:
        f"{LOGS}/render.log",
    conda:
        "../envs/metadip.yaml"
    shell:
        "{params.py:q} {params.stages:q}/render.py --config {params.config:q} --config-sha {params.config_sha} --results {input.results:q} --curated {params.curated:q} "
        "--tables {params.tables:q} --figures {params.figures:q} > {log:q} 2>&1"
