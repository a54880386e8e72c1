# Shared wiring: validate the config once, resolve paths, hand each step the config.
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The workflow imports the package from its own src/ (like its steps, below), so a dry run
# works before `pip install -e .` and a second checkout never runs the installed copy.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from dance import config as dance_config
from dance import plan as dance_plan
from dance.errors import DanceError
from dance.identity import AAP_BACKBONE, aap_stage, stage_identity
from dance.io import check_output_folder
from dance.paths import Paths

try:
    # The config is put together by the same function as the CLI's (default.yaml, then each
    # --configfile, then --config), from the files themselves: a key given twice in a file
    # is refused, and nested --config values get their types.
    settings = workflow.config_settings
    resolved = dance_config.resolve(
        settings.configfiles,
        dance_config.typed_cli_values(dict(settings.config)),
        with_default=not settings.replace_workflow_config,
    )
    config.clear()
    config.update(resolved)
    for key in ("results_dir", "figures_dir", "work_dir"):
        check_output_folder(config[key], key)
    dance_plan.export_points(config)  # refuses a devices.points entry nothing trains
except DanceError as exc:
    sys.exit(f"DANCE: {exc}")

PATHS = Paths(config)
# Every `python -m dance` step reads the exact validated config of this run. Its path
# (content-addressed) reaches the steps through the environment, not the command text:
# Snakemake re-runs a rule whose command text changed, so a path in the text would re-run
# every rule after any config edit; which sections a rule depends on is its `fp` param.
# Steps import the package from this workflow's own src/ (also inside a `--sdm conda`
# environment, which holds the dependencies but not the package).
RESOLVED_CONFIG = dance_config.write_resolved(config, PATHS.work / "config")
os.environ.update(DANCE_CONFIG=str(RESOLVED_CONFIG))
PYTHONPATH = os.pathsep.join(
    [str(Path(workflow.basedir) / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)
PYTHON_DANCE = f"PYTHONPATH={shlex.quote(PYTHONPATH)} python -m dance"
# The software of every step (snakemake --lint): the project's one environment, relative to
# the rule files in workflow/rules/. Used with `--sdm conda`; ignored otherwise.
CONDA_ENV = "../../environment.yml"
LOGS = PATHS.work / "logs"


def fp(*sections):
    """Params trigger: a rule re-runs when (only) the config sections it depends on change."""
    return dance_config.fingerprint(config, sections)


def step(cmd, *args):
    """What follows `python -m dance` in a step's shell line: its command, config, arguments."""
    return " ".join([cmd, '--config "$DANCE_CONFIG"', *args])


def run_step(*parts):
    """Shell line of one step; its stderr (progress, messages) goes to the terminal and log."""
    return " ".join([PYTHON_DANCE, *parts, "2>&1 | tee {log:q}"])


def dance(cmd, *args):
    """Shell line of the step `python -m dance <cmd> <args>`."""
    return run_step(step(cmd, *args))


def job_threads(kind):
    """Threads of one kind of job = config `resources.<kind>.cpus` (0 = every core given)."""
    return config["resources"][kind]["cpus"] or workflow.cores


def cli(cmd, *args):
    """`params.step` of a step made from a job template (jobs.smk), each job's wildcards
    filled in: a param's value is not formatted again in the shell command."""
    text = step(cmd, *args)
    return lambda wildcards: text.format(wildcards=wildcards)


def template_only(wildcards):
    """`params.step` of a job template itself, which is no job (its steps set their own)."""
    raise WorkflowError(
        "a job template (_<kind>_job in jobs.smk) runs nothing by itself"
    )


def one_of(names):
    """Wildcard constraint: exactly one of `names` (the plan's variants, levels, ...)."""
    return "|".join(names)


def job_resources(kind):
    """What a job of this kind requests from a cluster executor (config `resources.<kind>`):
    memory, wall-clock minutes and, where configured, GPUs (Snakemake's `gpu` resource).
    """
    res = config["resources"][kind]
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime"]}
    if res.get("gpus"):
        out["gpu"] = res["gpus"]
    return out


# AAP wiring (workflow/rules/aap.smk) -------------------------------------------------------


def aap_backbone(wildcards):
    return PATHS.checkpoint(wildcards.model, AAP_BACKBONE[wildcards.variant])


def aap_backbone_eval(wildcards):
    return PATHS.evaluation(wildcards.model, AAP_BACKBONE[wildcards.variant])


def identity(stage):
    """Params trigger of a training rule: its stage's identity
    (dance.identity.stage_identity), the fingerprint its checkpoint stores, so the rule
    re-runs exactly when the checkpoint would be refused. `stage`: a name, or a function of
    the job's wildcards giving it."""
    name = stage if callable(stage) else (lambda wildcards: stage)
    return lambda wildcards: stage_identity(config, wildcards.model, name(wildcards))


# --- comparison (sota_dynamic.smk) -------------------------------------------------------
def dynamic_checkpoint(wildcards):
    """The network of one dynamic-baseline record (named by its record, not its method)."""
    method = dance_plan.DYNAMIC_METHOD[wildcards.rname]
    return PATHS.checkpoint(
        wildcards.model, dance_plan.dynamic_stage(method, wildcards.point)
    )


# --- devices (devices.smk) ---------------------------------------------------------------
def device_log_state(device):
    """Params trigger: the rule of a device that is not driven from here re-runs when logs
    appear in (or change under) its hand-placed log folder. A driven device's own fetched
    logs must not trigger another run, nor the latency tables the rule itself writes there
    (Paths.device_latency_table)."""
    if dance_plan.device_driven(config, device):
        return "driven"
    folder = PATHS.device_logs(device)
    if not folder.exists():
        return "none"
    written = {PATHS.device_latency_table(device, m) for m in config["models"]}
    written |= {p.with_suffix(".json") for p in written}
    return sorted(
        f"{p.relative_to(folder)}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
        for p in folder.rglob("*")
        if p.is_file() and p not in written
    )


# --- paper outputs (paper.smk) -----------------------------------------------------------
from dance.report import registry as REPORT
from dance.report.provenance import git_commit


def produced_by_workflow(path):
    """True when a step of this workflow writes `path`. An optional input (the
    comparison's and the device stage's CSVs) becomes a dependency as soon as the rule that
    makes it is part of the workflow, and is read only if present otherwise."""
    target = str(path)
    return any(str(f) == target for r in workflow.rules for f in r.output)


def report_inputs(artifact_id):
    a = REPORT.get(artifact_id)
    optional = [p for p in a.optional(config) if produced_by_workflow(p)]
    return {
        "results": [str(p) for p in (*a.inputs(config), *optional)],
        "code": [str(p) for p in REPORT.code_files(artifact_id)],
    }


def report_outputs(artifact_id, category):
    """The artifact's files; the first (table CSV, figure PNG) goes into the HTML report."""
    first, *rest = REPORT.get(artifact_id).outputs(config)
    caption = f"../report/{artifact_id}.rst"
    return [report(str(first), caption=caption, category=category), *map(str, rest)]


def artifact_inputs(artifact_id):
    return lambda wildcards: report_inputs(artifact_id)


def artifact_trigger(artifact):
    """The params trigger of a table or figure rule: the config sections it reads (every
    figure reads `plots`); none for an artifact that reads only its inputs."""
    sections = (("plots",) if artifact.kind == "figure" else ()) + artifact.settings
    return {"fp": fp(*sections)} if sections else {}
