import os
import sys

from metadip.config import check_pipeline_config, config_hash, load_config
from metadip.plan import evaluation_jobs, tables_of

# The config file: the last --configfile given on the command line, else config/config.yaml.
CONFIGFILE = os.path.abspath(workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles
                             else os.path.join(workflow.basedir, "config", "config.yaml"))
CFG = check_pipeline_config(load_config(CONFIGFILE), CONFIGFILE)
PY = sys.executable
STAGES = os.path.join(workflow.basedir, "stages")  # entry points; the working directory may be elsewhere (--directory)
# params of every rule: interpreter, stages folder, config file — relative to the working directory,
# so that a clone elsewhere (or a `dvc pull` into one) does not count as changed params
STAGE = {"py": os.path.relpath(PY), "stages": os.path.relpath(STAGES), "config": os.path.relpath(CONFIGFILE)}
CUR = CFG["paths"]["curated"]
RES = CFG["paths"]["results"]
LOGS = f"{RES}/logs"
BENCH = f"{RES}/benchmarks"
EV = CFG["evaluate"]
EVAL_JOBS = evaluation_jobs(CFG)
PNP_DENOISERS = sorted({m["denoiser"] for m in EV["methods"].values() if m["kind"] == "pnp"})
PNP_TASKS = [t for t, spec in EV["tasks"].items() if spec["kind"] != "denoising"]
USES_DRUNET = any(m.get("denoiser") == "drunet" for m in EV["methods"].values())
DATASETS = sorted({*EV["roles"].values(), *([CFG["meta"]["train_dataset"]] if CFG["meta"]["methods"] else [])})
META_METHODS = sorted({m["init"] for m in EV["methods"].values() if m["kind"] == "meta"})


def section_hash(*keys):
    """Hash of the config sections (dotted keys) a step depends on; in params it triggers reruns."""
    picked = {}
    for key in keys:
        node = CFG
        for part in key.split("."):
            node = node[part]
        picked[key] = node
    return config_hash(picked)


def dataset_dir(name):
    return ancient(f"{CUR}/{name}")


def meta_init(method):
    return f"{RES}/meta/{method}/meta_init.safetensors"


DRUNET = f"{RES}/denoisers/drunet.safetensors"


def shard_path(job):
    return f"{RES}/eval/{job['task']}/{job['dataset']}/{job['method']}/shard-{job['shard']}.parquet"


def final_outputs():
    tables = [f"{RES}/tables/table{t}.{ext}" for t in tables_of(CFG) for ext in ("md", "tex", "csv")]
    figures = [f"{RES}/figures/figure{n}.png" for n in [2] + [t + 2 for t in tables_of(CFG)]]
    return tables + figures + [f"{RES}/summary.json", f"{RES}/convergence.csv"]


def evaluation_inputs(wc):
    method = EV["methods"][wc.method]
    inputs = {"data": dataset_dir(wc.dataset)}
    if method["kind"] == "meta":
        inputs["meta_init"] = ancient(meta_init(method["init"]))
    if method.get("denoiser") == "drunet":
        inputs["drunet"] = ancient(DRUNET)
    if method["kind"] == "pnp":
        inputs["pnp"] = ancient(f"{RES}/pnp/{wc.task}_{method['denoiser']}.json")
    return inputs


def artifact_args(wc, input):
    flags = {"meta_init": "--meta-init", "drunet": "--drunet", "pnp": "--pnp"}
    return " ".join(f"{flag} {input[key]}" for key, flag in flags.items() if key in input.keys())
