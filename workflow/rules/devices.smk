# On-device runs (method.md §7): export dense + DANCE to ONNX once, time them on the host
# with ONNX Runtime, run them on a Jetson Nano (ssh) and a Snapdragon phone (adb) when those
# are configured (else ingest logs placed by hand, else "not measured"), and summarise.
# One measurement per device at a time: each device is a resource of capacity 1 (set here
# unless --resources gives it), and device rules run on this host even under a cluster
# executor (they talk to the device over ssh/adb).

for _device_resource in ("jetson", "phone"):
    if _device_resource not in workflow.global_resources:
        workflow.register_resource(_device_resource, 1)


def export_inputs(wildcards):
    """AVA backbones and the DANCE controllers the bundle exports (mirrors
    dance.devices.export.export_points)."""
    n = len(config["aap"]["points"])
    points = config["devices"]["points"]
    points = range(n) if points is None else points
    return ([PATHS.checkpoint(m, "ava") for m in config["models"]]
            + [PATHS.aap_checkpoint(m, "dance", k) for m in config["models"] for k in points])


def device_log_state(device):
    """Params trigger: the rule of a device that is not driven from here re-runs when logs
    appear in (or change under) its hand-placed log folder. A driven device's own fetched
    logs must not trigger another run."""
    key = {"jetson_nano": ("jetson_nano", "ssh"), "snapdragon": ("snapdragon", "adb_serial")}
    section, field = key[device]
    if config["devices"][section][field]:
        return "driven"
    folder = PATHS.device_logs(device)
    if not folder.exists():
        return "none"
    return sorted(f"{p.relative_to(folder)}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
                  for p in folder.rglob("*") if p.is_file())


rule export_onnx:
    input:
        manifest=PATHS.manifest,
        checkpoints=export_inputs,
    output:
        bundle=PATHS.device_bundle / "manifest.json",
        check=PATHS.onnx_export_check,
    params:
        fp=fp("seed", "dataset", "model", "train", "ava", "aap", "bench", "devices"),
    threads: workflow.cores
    log:
        LOGS / "export_onnx.log",
    shell:
        dance("export-onnx", "--set threads={threads}")


rule bench_onnx:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        csv=PATHS.bench_onnx,
        detail=PATHS.bench_onnx.with_suffix(".json"),
    params:
        fp=fp("bench"),
        threads=lambda wildcards, threads: config["bench"]["threads"] or threads,
    threads: workflow.cores
    log:
        LOGS / "bench_onnx.log",
    shell:
        dance("bench-onnx", "--set bench.threads={params.threads}")


rule jetson_nano:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        PATHS.device_result("jetson_nano"),
    params:
        fp=fp("devices"),
        logs=lambda wildcards: device_log_state("jetson_nano"),
    resources:
        jetson=1,
    localrule: True
    log:
        LOGS / "device_jetson_nano.log",
    shell:
        dance("device", "--device jetson_nano")


rule snapdragon:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        PATHS.device_result("snapdragon"),
    params:
        fp=fp("devices"),
        logs=lambda wildcards: device_log_state("snapdragon"),
    resources:
        phone=1,
    localrule: True
    log:
        LOGS / "device_snapdragon.log",
    shell:
        dance("device", "--device snapdragon")


rule devices_summary:
    input:
        host=PATHS.bench_onnx,
        jetson=PATHS.device_result("jetson_nano"),
        phone=PATHS.device_result("snapdragon"),
    output:
        csv=PATHS.devices_summary,
        md=PATHS.devices_summary.with_suffix(".md"),
    log:
        LOGS / "devices_summary.log",
    shell:
        dance("devices-summary")
