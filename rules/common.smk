import os
import shlex
import sys
import time
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from metadip.core.errors import InputError
from metadip.pipeline.config import ConfigError, check_config_files, workflow_config
from metadip.pipeline.plan import claim_jobs, evaluation_jobs, stop_dataset, stop_jobs, stops_on_val, tables_of
from metadip.pipeline.stage import config_snapshot, point_latest, write_snapshot
from metadip.pipeline.records import read_step_hash
from metadip.pipeline.steps import Steps
from metadip.reporting.protocol import load_protocol, verdict_hash

# Snakemake's config (`configfile:` in the Snakefile, then each --configfile overlay, then --config
# values), validated once against src/metadip/pipeline/config.schema.yaml with defaults filled in.
CONFIG_SOURCES = " + ".join(
    [os.path.relpath(f) for f in workflow.configfiles] + (["--config"] if workflow.config_settings.config else [])
)
try:
    check_config_files(workflow.configfiles)  # Snakemake keeps the last of duplicate keys: refuse them
    with open(os.path.join(workflow.basedir, "config", "config.yaml")) as default_file:  # the Snakefile's configfile
        CFG = workflow_config(config, CONFIG_SOURCES or "config", yaml.safe_load(default_file))
except ConfigError as err:
    raise WorkflowError(str(err)) from None  # one line, no traceback
PY = sys.executable
STAGES = os.path.join(workflow.basedir, "stages")  # entry points; the working directory may be elsewhere (--directory)
CUR = CFG["paths"]["curated"]
RES = CFG["paths"]["results"]
# The stages read the merged config from a snapshot named by the hash of its content, which the job
# checks (--config-sha): a later invocation with another config writes another file, never this one,
# so a running job reads the config it was planned with; cluster jobs re-parse the workflow with the
# same settings and name the same file. A dry run writes it when it can (for running a stage by
# hand) and needs no writable results folder: no job reads what a dry run writes. A real run also
# points <results>/config.yaml at it (the latest run's config; no job reads it). Path and hash are
# params derived from the job's threads, which Snakemake leaves out of its rerun check: each rule's
# own sections are in its config_hash param, so a change reruns only the steps it touches.
# Interpreter and stages folder are relative to the working directory, so that a clone elsewhere
# (or a `dvc pull` into one) does not count as changed params.
CONFIG_SNAPSHOT, CONFIG_SHA, _config_text = config_snapshot(CFG, RES)
try:
    write_snapshot(CONFIG_SNAPSHOT, _config_text)
except OSError as err:
    if not workflow.output_settings.dryrun:
        raise WorkflowError(
            f"{CONFIG_SNAPSHOT}: cannot write the merged config ({os.strerror(err.errno) if err.errno else err}); "
            f"make paths.results ({RES}) a writable folder with free space"
        ) from None
if workflow.is_main_process and not workflow.output_settings.dryrun:
    try:
        point_latest(f"{RES}/config.yaml", CONFIG_SNAPSHOT)
    except OSError as err:  # a convenience only: e.g. a filesystem without symlinks
        print(f"note: {RES}/config.yaml not linked to {CONFIG_SNAPSHOT} ({err.strerror or err})", file=sys.stderr)
STAGE = {
    "py": os.path.relpath(PY),
    "stages": os.path.relpath(STAGES),
    "config": lambda wildcards, threads: CONFIG_SNAPSHOT,
    "config_sha": lambda wildcards, threads: CONFIG_SHA,
}
LOGS = f"{RES}/logs"
BENCH = f"{RES}/benchmarks"
EV = CFG["evaluate"]
EVAL_JOBS = evaluation_jobs(CFG)
PNP_DENOISERS = sorted({m["denoiser"] for m in EV["methods"].values() if m["kind"] == "pnp"})
PNP_TASKS = [t for t, spec in EV["tasks"].items() if spec["kind"] != "denoising"]
USES_DRUNET = any(m.get("denoiser") == "drunet" for m in EV["methods"].values())
DATASETS = sorted({*EV["roles"].values(), *([CFG["meta"]["train_dataset"]] if CFG["meta"]["methods"] else [])})
META_METHODS = sorted({m["init"] for m in EV["methods"].values() if m["kind"] == "meta"})


# Each step's identity is declared once, in metadip.pipeline.steps: the config keys it reads and the
# steps it reads from. Its hash is the rule's config_hash param (Snakemake's params trigger, which
# needs Snakemake's own records of earlier runs) and every output records it (metadip.pipeline.records).
# Each job also reads a stamp of its own under .snakemake/metadip-stamps, which the main process
# dates at start-up (date_stamps, at the end of this file): to now when the job's output records
# another step hash, so that the job reruns (its input is newer than its output) whatever route put
# the output there (`dvc pull` + `snakemake --touch`, a copy, another config sharing the folder);
# else to the epoch, so that it never triggers one.
STEPS = Steps(CFG)
AB = CFG["ablation"]
# one stamp per recording output, named by its path: configs sharing an output share its stamp
STAMPS = os.path.join(".snakemake", "metadip-stamps")
#: each stamped rule's output that records its step hash, from the job's wildcards
RECORDS = {
    "curate": lambda w: dataset_dir(w["dataset"]),
    "train_denoiser": lambda w: f"{RES}/denoisers/drunet.json",
    "meta_train": lambda w: f"{RES}/meta/{w['method']}/meta_init.json",
    "tune_pnp": lambda w: f"{RES}/pnp/{w['task']}_{w['denoiser']}.json",
    "dip_stop": lambda w: stop_path(w),
    "evaluate": lambda w: shard_path(w),
    "aggregate": lambda w: f"{RES}/results.parquet",
    "claims": lambda w: f"{RES}/claims.json",
    "render": lambda w: f"{RES}/figures/figure2.png",
    "ablate": lambda w: f"{RES}/ablation/{w['variant']}/result.json",
    "ablation_dip": lambda w: f"{RES}/ablation/dip-reference/result.json",
}


def step_hash(rule):
    """The config_hash param of ``rule``: its step's hash for the job's wildcards (the claims': with the
    protocol's, what claims.json records)."""
    return lambda wc: planned_hash(rule, {k: v for k, v in wc.items() if k != "shard"})


def planned_hash(rule, wildcards):
    """The hash a job of ``rule`` records: its step's, for claims combined with the protocol's."""
    own = STEPS.rule_hash(rule, **wildcards)
    return verdict_hash(own, PROTOCOL_SHA) if rule == "claims" else own


def stamp_path(rule, wildcards):
    """The stamp of a job of ``rule`` (wildcards: a mapping), named by its recording output's path:
    relative to the working directory (a moved project keeps its stamps), absolute outside it."""
    out = os.path.relpath(RECORDS[rule](wildcards))
    if out.split(os.sep)[0] == "..":
        return os.path.join(STAMPS, "outside", os.path.abspath(out).lstrip(os.sep))
    return os.path.join(STAMPS, out)


def stamp(rule):
    """Input function: the job's stamp (dated by date_stamps at start-up; rule step_stamp makes a missing one)."""
    return lambda wc: stamp_path(rule, dict(wc.items()))


def dataset_dir(name):
    return f"{CUR}/{name}"


def meta_init(method):
    return f"{RES}/meta/{method}/meta_init.safetensors"


DRUNET = f"{RES}/denoisers/drunet.safetensors"


def shard_path(job):
    return f"{RES}/eval/{job['task']}/{job['dataset']}/{job['method']}/shard-{job['shard']}.parquet"


def stop_path(job):
    """The stop record of a dip method with stop_on_val on a (task, dataset) (rule dip_stop)."""
    return f"{RES}/dip_stop/{job['task']}/{job['dataset']}/{job['method']}.json"


CLAIMS_OUT = [f"{RES}/claims.json", f"{RES}/claims.md"] if CFG["claims"]["enabled"] else []
# the claims' protocol, versioned with the code; relative to the working directory, so that the verdicts
# (which name it) and the rule's input do not change when the project moves
PROTOCOL = os.path.relpath(os.path.join(workflow.basedir, "config", "protocol.yaml"))
try:  # a broken protocol stops the workflow in one line, before any job
    PROTOCOL_SHA = load_protocol(PROTOCOL).sha256 if CFG["claims"]["enabled"] else ""
except InputError as err:
    raise WorkflowError(str(err)) from None
LEDGER = os.path.relpath(os.path.join(workflow.basedir, "docs", "confirmatory-ledger.tsv"))  # every confirmatory read
PNP_GRIDS = [f"{RES}/pnp/{t}_{d}.json" for t in PNP_TASKS for d in PNP_DENOISERS]
PNP_TABLE = [f"{RES}/tables/pnp_tuning.md", f"{RES}/tables/pnp_tuning.csv"] if PNP_GRIDS else []
try:  # the dataset whose val split chooses each stop step: a bad name stops the workflow in one line
    DIP_STOPS = [stop_path(job) for job in stop_jobs(CFG) if stop_dataset(CFG, job["method"], job["dataset"])]
except InputError as err:
    raise WorkflowError(str(err)) from None


def final_outputs():
    tables = [f"{RES}/tables/table{t}.{ext}" for t in tables_of(CFG) for ext in ("md", "tex", "csv")]
    figures = [f"{RES}/figures/figure{n}.png" for n in [2] + [t + 2 for t in tables_of(CFG)]]
    ablation = [f"{RES}/ablation/ablation.md", f"{RES}/ablation/ablation.csv"] if AB["enabled"] else []
    return tables + figures + PNP_TABLE + [f"{RES}/summary.json", f"{RES}/means.csv", f"{RES}/convergence.csv"] + \
        CLAIMS_OUT + ablation


CURATED_DIRS = [dataset_dir(d) for d in DATASETS]
META_OUTPUTS = [f"{RES}/meta/{m}/meta_init.{ext}" for m in META_METHODS for ext in ("safetensors", "json")]
BASELINE_OUTPUTS = ([DRUNET, f"{RES}/denoisers/drunet.json"] if USES_DRUNET else []) + PNP_GRIDS


def intermediate_outputs():
    """Every file between the sources and the final outputs: the curated datasets, meta-inits,
    DRUNet, PnP grids, DIP stop records, evaluation shards, results.parquet (and the ablation
    variants when on).
    `all` requests them too because Snakemake (>= 7.7) rebuilds a missing file only when it is a
    target or a job downstream of it has to run anyway: without them a deleted shard or
    results.parquet is never rebuilt while the tables are up to date ("Nothing to be done")."""
    ablation = [f"{RES}/ablation/{v}/result.json" for v in AB["variants"]] if AB["enabled"] else []
    return CURATED_DIRS + META_OUTPUTS + BASELINE_OUTPUTS + DIP_STOPS + [shard_path(job) for job in EVAL_JOBS] + \
        [f"{RES}/results.parquet"] + ablation


def get_evaluation_inputs(wc):
    method = EV["methods"][wc.method]
    inputs = {"data": dataset_dir(wc.dataset), "stamp": stamp("evaluate")(wc)}
    if method["kind"] == "meta":
        inputs["meta_init"] = meta_init(method["init"])
    if method.get("denoiser") == "drunet":
        inputs["drunet"] = DRUNET
    if method["kind"] == "pnp":
        inputs["pnp"] = f"{RES}/pnp/{wc.task}_{method['denoiser']}.json"
    if stops_on_val(method):
        inputs["dip_stop"] = stop_path(dict(wc.items()))
    return inputs


def get_artifact_args(wc, input):
    flags = {"meta_init": "--meta-init", "drunet": "--drunet", "pnp": "--pnp", "dip_stop": "--dip-stop"}
    return " ".join(f"{flag} {shlex.quote(input[key])}" for key, flag in flags.items() if key in input.keys())


def stamped_jobs():
    """(rule, wildcards) of every job the stamps cover."""
    pnp_tasks = [t for t, spec in EV["tasks"].items() if spec["kind"] != "denoising"]
    yield from (("curate", {"dataset": d}) for d in CFG["curate"]["datasets"])
    yield ("train_denoiser", {})
    yield from (("meta_train", {"method": m}) for m in CFG["meta"]["methods"])
    yield from (("tune_pnp", {"task": t, "denoiser": d}) for t in pnp_tasks for d in ("bm3d", "drunet"))
    yield from (("dip_stop", job) for job in stop_jobs(CFG))
    yield from (("evaluate", job) for job in EVAL_JOBS)
    yield from (("aggregate", {}), ("claims", {}), ("render", {}), ("ablation_dip", {}))
    yield from (("ablate", {"variant": v}) for v in AB["variants"])


def date_stamps():
    """Write and date each job's stamp before Snakemake reads any file: when the job's output records
    another step hash than it plans, a new content dated now (the job reruns: its input is newer
    than its output, with another checksum than Snakemake may have recorded for it); else the
    planned hash dated at the epoch (never newer). Only the main process does; a read-only folder
    (a dry run) is left alone."""
    for rule, wildcards in stamped_jobs():
        output = RECORDS[rule](wildcards)
        got = read_step_hash(output) if os.path.exists(output) else None
        planned = step_hash(rule)(wildcards)
        stale = got is not None and got != planned
        path = stamp_path(rule, wildcards)
        text = f"{planned} (the output records {got}; {time.time_ns()})\n" if stale else f"{planned}\n"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if stale or not os.path.exists(path) or Path(path).read_text() != text:
                with open(path, "w") as f:
                    f.write(text)
            os.utime(path, None if stale else (0, 0))
        except OSError:  # a read-only folder (a dry run): the rule step_stamp makes a missing stamp
            continue


if workflow.is_main_process:
    date_stamps()
