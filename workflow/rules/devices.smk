# On-device runs (method.md §7): export dense + DANCE to ONNX once, time them on the host
# with ONNX Runtime, run them on a Jetson Nano (ssh) and a Snapdragon phone (adb) when those
# are configured (else ingest logs placed by hand, else "not measured"), and summarise.
# One measurement per device at a time: each device is a resource of capacity 1 (set here
# unless --resources gives it), and device rules run on this host even under a cluster
# executor (they talk to the device over ssh/adb).

for _device_resource in ("jetson", "phone"):
    if _device_resource not in workflow.global_resources:
        workflow.register_resource(_device_resource, 1)


use rule _evaluate_job as export_onnx with:
    input:
        manifest=PATHS.manifest,
        checkpoints=dance_plan.export_checkpoints(config),
    output:
        bundle=PATHS.device_bundle / "manifest.json",
        check=PATHS.onnx_export_check,
    log:
        LOGS / "export_onnx.log",
    params:
        fp=fp("seed", "dataset", "model", "train", "ava", "aap", "bench", "devices"),
        step=cli("export-onnx"),


use rule _bench_job as bench_onnx with:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        csv=PATHS.bench_onnx,
        detail=PATHS.bench_onnx.with_suffix(".json"),
    log:
        LOGS / "bench_onnx.log",
    params:
        fp=fp("bench"),
        step=cli("bench-onnx"),


rule jetson_nano:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        PATHS.device_result("jetson_nano"),
    log:
        LOGS / "device_jetson_nano.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        jetson=1,
    params:
        fp=fp("devices"),
        logs=lambda wildcards: device_log_state("jetson_nano"),
    shell:
        dance("device", "--device jetson_nano")


rule snapdragon:
    input:
        bundle=PATHS.device_bundle / "manifest.json",
    output:
        PATHS.device_result("snapdragon"),
    log:
        LOGS / "device_snapdragon.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        phone=1,
    params:
        fp=fp("devices"),
        logs=lambda wildcards: device_log_state("snapdragon"),
    shell:
        dance("device", "--device snapdragon")


use rule _report_job as devices_summary with:
    input:
        host=PATHS.bench_onnx,
        check=PATHS.onnx_export_check,
        jetson=PATHS.device_result("jetson_nano"),
        phone=PATHS.device_result("snapdragon"),
        gpu=lambda w: [PATHS.gpu_result] if PATHS.gpu_result.exists() else [],
    output:
        csv=PATHS.devices_summary,
        md=PATHS.devices_summary.with_suffix(".md"),
    log:
        LOGS / "devices_summary.log",
    params:
        step=cli("devices-summary"),
