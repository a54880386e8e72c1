#!/usr/bin/env bash
# The GPU check (issue 22.3), for a machine with one CUDA GPU; at most ~8 minutes there.
#   1. the smoke DAG with device: cuda (every step runs on the GPU path);
#   2. paper-size networks (width 1, 16x112x112, workflow/config/gpu_check.yaml) trained
#      briefly on the GPU, then dense vs two DANCE points timed interleaved at batch 1 with
#      energy from NVML (bench_aap);
#   3. those benches as a device result, results/devices/gpu/result.json, which
#      `python -m dance devices-summary` (the devices_summary rule) adds to devices.csv.
# Usage: bash scripts/gpu_check.sh   (GPU_CHECK_BUDGET_S=480 by default; exits 3 without a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False): nothing measured" >&2
    exit 3
fi
python -c "import pynvml" 2>/dev/null || python -m pip install -q -e ".[gpu]"
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv || true

budget=${GPU_CHECK_BUDGET_S:-480}
start=$SECONDS
left() { local s=$(( budget - (SECONDS - start) )); echo $(( s > 10 ? s : 10 )); }
stamp() { echo "gpu_check: $1 after $(( SECONDS - start )) s"; }

timeout "$(left)" snakemake --cores all --configfile workflow/config/smoke.yaml \
    --config device=cuda results_dir=results-smoke-gpu figures_dir=figures-smoke-gpu \
    work_dir=work-smoke-gpu
stamp "smoke DAG on CUDA done"

benches=(results-gpu-check/metrics/c3d/bench_aap.csv results-gpu-check/metrics/r3d18/bench_aap.csv)
# targets first: --configfile takes every word after it
timeout "$(left)" snakemake --cores all "${benches[@]}" --configfile workflow/config/gpu_check.yaml
stamp "paper-size benches done"

python -m dance gpu-result --bench "${benches[0]}" --bench "${benches[1]}"
stamp "device result written"
