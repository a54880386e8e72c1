#!/usr/bin/env bash
# How the committed results/ and figures/ are made (issue 18.5): the default DAG, from a
# fresh virtual environment, on an empty work/, at one commit, with nothing else running.
#   bash scripts/reference_run.sh start    # worktree of HEAD in $REF, fresh venv, snakemake
#   bash scripts/reference_run.sh resume   # continue an interrupted run (finished jobs kept)
#   bash scripts/reference_run.sh collect  # copy its results/ and figures/ here, stage times
# About 2 h on a 2-core host. REF (default /tmp/ref) and VENV (default /tmp/refvenv) move it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-/tmp/ref}
venv=${VENV:-/tmp/refvenv}

run_dag() {
    cd "$ref"
    . "$venv/bin/activate"
    echo "snakemake start $(date -u +%FT%TZ)"
    snakemake --cores all
    echo "snakemake done $(date -u +%FT%TZ)"
}

case "${1:-}" in
start)
    git -C "$here" worktree add --detach "$ref" HEAD
    git -C "$ref" rm -rq results figures          # the outputs must come from this run
    rm -rf "$venv"
    python3 -m venv "$venv"
    (cd "$ref" && "$venv/bin/python" -m pip install -q -e .)
    run_dag ;;
resume)
    run_dag ;;
collect)
    logs=$(ls -tr "$ref"/.snakemake/log/*.snakemake.log)
    grep -q "steps (100%) done" $(echo "$logs" | tail -1) || { echo "the run is not complete" >&2; exit 1; }
    cd "$here"
    git rm -rq results figures
    cp -r "$ref/results" "$ref/figures" .
    python scripts/stage_times.py $logs --out results/run_times.csv
    python scripts/readme_results.py --write
    git add -A results figures README.md
    echo "collected; commit with the run's commit ($(git -C "$ref" rev-parse --short HEAD)) named" ;;
*)
    sed -n 2,8p "$0"; exit 2 ;;
esac
