# The metadip pipeline: curate -> train DRUNet -> tune PnP -> meta-train -> evaluate shards ->
# aggregate, claims -> render Tables 1-3, Figures 2-5, the PnP tuning table and the report; optionally
# the ablation table.
#
#   snakemake --cores 2                                  # the default config (config/config.yaml)
#   snakemake --cores 2 --configfile config/paper.yaml   # an overlay on the default config
#   snakemake --cores 2 --config 'evaluate={images: 8}'  # override single values
#   snakemake --profile slurm                            # on a SLURM cluster
#   snakemake --report results/report.html               # HTML report of the last run
#
# The config is Snakemake's: config/config.yaml, then --configfile overlays (an entry set to null
# under curate.datasets, meta.methods, evaluate.tasks / methods or ablation.variants removes it),
# then --config values; validated against src/metadip/pipeline/config.schema.yaml (defaults filled in, an unknown
# key refused by name) and passed as a whole to every stage: one source of truth. Snakemake reruns a step when
# its step hash changes (the config keys it and its upstream steps read, declared once in
# metadip.pipeline.steps; every output records the hash it was computed under, so this holds after
# `dvc pull` too), an upstream step reruns, an input is newer than its outputs, or an output is
# missing (`all` lists the intermediate files as well, so that a deleted shard or results.parquet is
# rebuilt, with the steps downstream of it). Files checked out by DVC carry checkout times: run
# `snakemake --touch` once after `dvc pull` to mark them up to date.

import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_-]+",
    task="[A-Za-z0-9_-]+",
    variant="[A-Za-z0-9_-]+",
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
