#!/usr/bin/env bash
# The GPU check of captured (CUDA-graph) solver steps: bench/captured_steps.py, one process per
# measurement group (a failed capture cannot take the other groups with it), within one time budget
# shared out over the groups still to run. Everything goes to stdout and, when OUT is set, to
# $OUT/gpu_check.log. Exit status 1 when a measurement failed or a group was cut short.
#
#   PYTHONPATH=src bash bench/gpu_check.sh [--device cuda|cpu] [--quick] [--budget SECONDS]
#
# --budget (default 380) bounds the whole run: each group gets its share of what is left (a soft
# limit: the script skips measurements that would not fit) plus 20 s of grace (a hard limit).
# PYTHON picks the interpreter (default: python3 when it imports torch, else .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."

args=()
budget=380
while (($#)); do
    case $1 in
    --device) args+=(--device "${2:?--device needs cuda or cpu}"); shift 2 ;;
    --device=*) args+=("$1"); shift ;;
    --quick) args+=(--quick); shift ;;
    --budget) budget=${2:?--budget needs seconds}; shift 2 ;;
    --budget=*) budget=${1#*=}; shift ;;
    *) echo "gpu_check.sh: unknown argument '$1' (options: --device cuda or cpu, --quick, --budget SECONDS)" >&2; exit 2 ;;
    esac
done
if ! [[ $budget =~ ^[0-9]+$ ]]; then
    echo "gpu_check.sh: --budget must be a whole number of seconds, got '$budget'" >&2
    exit 2
fi

py=${PYTHON:-}
if [[ -z $py ]]; then
    if python3 -c 'import torch' 2>/dev/null; then
        py=python3
    elif [[ -x .venv/bin/python ]]; then
        py=.venv/bin/python
    else
        py=python3
    fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

groups=(dip metadip metadip_batch maml1 maml2)
weights=(10 10 14 16 25) # shares of the time left; second-order MAML costs most

check() {
    local start=$SECONDS status=0 i w rest left share t0 rc
    echo "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi -L
    else
        echo "nvidia-smi: not found"
    fi
    "$py" -c 'import sys, torch; print(f"python {sys.version.split()[0]} ({sys.executable}), torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, GPU available: {torch.cuda.is_available()}")' ||
        { echo "gpu_check.sh: $py cannot import torch"; return 1; }
    for i in "${!groups[@]}"; do
        left=$((budget - (SECONDS - start)))
        rest=0
        for w in "${weights[@]:i}"; do rest=$((rest + w)); done
        share=$((left * weights[i] / rest))
        if ((share < 10)); then
            echo -e "\n## ${groups[i]}: skipped, ${left} s of the budget left"
            status=1
            continue
        fi
        t0=$SECONDS
        timeout -k 10 $((share + 20)) "$py" bench/captured_steps.py --group "${groups[i]}" --budget "$share" ${args[@]+"${args[@]}"}
        rc=$?
        echo -e "\n(${groups[i]}: exit status $rc after $((SECONDS - t0)) s; its share was $share s)"
        ((rc)) && status=1
    done
    echo "gpu_check: $((SECONDS - start)) s in all, exit status $status"
    return $status
}

if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    check 2>&1 | tee "$OUT/gpu_check.log"
    exit "${PIPESTATUS[0]}"
fi
check
