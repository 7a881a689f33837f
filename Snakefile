# The metadip pipeline: curate -> train DRUNet -> tune PnP -> meta-train -> evaluate shards ->
# aggregate -> render Tables 1-3, Figures 2-5 and the report; optionally the ablation table.
#
#   snakemake --cores 2                                  # the default config (config/config.yaml)
#   snakemake --cores 2 --configfile config/paper.yaml   # another config file (replaces the default)
#   snakemake --profile profiles/slurm                   # on a SLURM cluster
#   snakemake --report results/report.html               # HTML report of the last run
#
# The config file is validated against config/config.schema.yaml (defaults filled in) and passed
# as a whole to every stage: one file is the single source of truth. Snakemake reruns a step when
# its config or any upstream config (a hash in params) changes, an upstream step reruns, an input
# is newer than its outputs, or an output is missing (`all` lists the intermediate files as well,
# so that a deleted shard or results.parquet is rebuilt, with the steps downstream of it). Files
# checked out by DVC carry checkout times: run `snakemake --touch` once after `dvc pull` to mark
# them up to date.

include: "rules/common.smk"


wildcard_constraints:
    dataset="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_.-]+",
    task="[A-Za-z0-9_.-]+",
    variant="[A-Za-z0-9_.-]+",
    denoiser="bm3d|drunet",
    shard=r"\d+",


include: "rules/data.smk"
include: "rules/baselines.smk"
include: "rules/meta.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/ablation.smk"

report: "report/workflow.rst"


localrules:
    all,
    curated,
    meta_inits,
    baselines,


rule all:
    input:
        final_outputs(),
        intermediate_outputs(),
    default_target: True


# Coarse targets, one per expensive boundary (dvc.yaml runs them as its stages).
rule curated:
    input:
        CURATED_DIRS,


rule meta_inits:
    input:
        META_OUTPUTS,


rule baselines:
    input:
        BASELINE_OUTPUTS,
