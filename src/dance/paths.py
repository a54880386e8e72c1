"""Where every file lives. The Snakefile and the CLI both ask this module, so a path is
defined once; `results_dir`, `figures_dir` and `work_dir` in the config move everything."""

from __future__ import annotations

from pathlib import Path


class Paths:
    def __init__(self, cfg: dict):
        self.results = Path(cfg["results_dir"])
        self.figures = Path(cfg["figures_dir"])
        self.work = Path(cfg["work_dir"])
        self.dataset_name = cfg["dataset"]["name"]
        self.pinned_latency_table = cfg.get("aap", {}).get("latency_table_file")

    def recorded(self, path: Path) -> str:
        """How an output names another file: relative to results_dir, so that the name is
        the same wherever the results were written or moved (determinism, committed
        results)."""
        try:
            return Path(path).relative_to(self.results).as_posix()
        except ValueError:
            return Path(path).as_posix()

    # data ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """Cached uint8 shards and the manifest of the configured data set."""
        return self.work / "data" / self.dataset_name

    @property
    def manifest(self) -> Path:
        return self.data_dir / "manifest.json"

    # checkpoints --------------------------------------------------------------------
    def checkpoint(self, model: str, stage: str) -> Path:
        """Final weights of a training stage (baseline, ava, ...)."""
        return self.work / "checkpoints" / model / f"{stage}.pt"

    def epoch_checkpoint_dir(self, model: str, stage: str) -> Path:
        """Per-epoch resumable state of a training stage."""
        return self.work / "checkpoints" / model / stage

    # metrics ------------------------------------------------------------------------
    @property
    def metrics(self) -> Path:
        return self.results / "metrics"

    def history(self, model: str, stage: str) -> Path:
        """Per-epoch training curve (loss, accuracy, extra loss terms)."""
        return self.metrics / model / f"{stage}_history.csv"

    def evaluation(self, model: str, stage: str) -> Path:
        """Test-split evaluation: top-1, per-class accuracy, confusion matrix."""
        return self.metrics / model / f"{stage}_eval.json"

    def ava_sparsity(self, model: str) -> Path:
        """Per stage, layer and dimension: mean Hoyer sparsity and normalised variance."""
        return self.metrics / model / "ava_sparsity.csv"

    def ava_profiles(self, model: str) -> Path:
        """Sorted magnitude profiles of a few test clips and layers, per stage (figure F5)."""
        return self.metrics / model / "ava_profiles.csv"

    def ava_summary(self, model: str) -> Path:
        """Top-1 and mean Hoyer sparsity per dimension before/after AVA."""
        return self.metrics / model / "ava_summary.json"

    def bench(self, model: str, stage: str) -> Path:
        """Host latency (and RAPL energy) of every bench variant, one row per variant; the
        per-call times, schedule, audits and slow-path check go to the .json beside it."""
        return self.metrics / model / f"bench_{stage}.csv"

    @property
    def profile_layers(self) -> Path:
        """Dense per-layer MACs, accesses and energy model estimate, every configured model."""
        return self.metrics / "profile_layers.csv"

    @property
    def profile_summary(self) -> Path:
        """Dense per-model totals of :attr:`profile_layers` and the ops left uncounted."""
        return self.metrics / "profile_summary.csv"

    # AAP (one controller per model × variant × operating point) ----------------------
    def aap_checkpoint(self, model: str, variant: str, point: int) -> Path:
        """Trained AAP controller (its weights only; the backbone is the ava/baseline one)."""
        return self.work / "checkpoints" / model / "aap" / f"{variant}_{point}.pt"

    def aap_state_dir(self, model: str, variant: str, point: int) -> Path:
        """Per-epoch resumable state of a controller's training."""
        return self.work / "checkpoints" / model / "aap" / f"{variant}_{point}"

    def aap_history(self, model: str, variant: str, point: int) -> Path:
        """Per-epoch controller training curve (CE, KD, expected MAC ratio, val top-1)."""
        return self.metrics / model / "aap" / f"{variant}_{point}_history.csv"

    def aap_eval(self, model: str, variant: str, point: int) -> Path:
        """Test-split evaluation of one operating point: top-1, MACs, memory, energy, overhead."""
        return self.metrics / model / "aap" / f"{variant}_{point}_eval.json"

    def aap_decisions(self, model: str, variant: str, point: int) -> Path:
        """Per clip × layer: kept frames/channels/features and effective MACs (F3/F7/F8)."""
        return self.metrics / model / "aap" / f"{variant}_{point}_decisions.csv"

    def aap_masks(self, model: str, variant: str, point: int) -> Path:
        """Full per-layer masks of the first few test clips (NPZ, figure F1)."""
        return self.metrics / model / "aap" / f"{variant}_{point}_masks.npz"

    def latency_table(self, model: str) -> Path:
        """Per-layer latency of the pruned execution on this host, per kept-share grid point
        (+ ``.json``: the measurement conditions)."""
        return self.metrics / model / "latency_table.csv"

    def training_latency_table(self, model: str) -> Path:
        """The table a latency-aware controller trains against: ``aap.latency_table_file``
        (``{model}`` replaced by the model's name) when set, else this run's measured one."""
        if self.pinned_latency_table:
            # only {model} is a placeholder: any other brace is part of the path (a
            # str.format would raise on it with a traceback instead of naming a file)
            return Path(self.pinned_latency_table.replace("{model}", model))
        return self.latency_table(model)

    def aap_bench(self, model: str) -> Path:
        """Host latency of dense vs every trained AAP operating point, one interleaved run."""
        return self.metrics / model / "bench_aap.csv"

    @property
    def dance_summary(self) -> Path:
        """One row per model × variant × operating point (DANCE and ablations)."""
        return self.metrics / "dance_summary.csv"

    @property
    def dance_difficulty_terms(self) -> Path:
        """Per evaluated point: Spearman of per-clip MACs with each difficulty term."""
        return self.metrics / "dance_difficulty_terms.csv"

    # state-of-the-art comparison (dance.sota) ----------------------------------------
    def sota_record(self, model: str, method: str, point: str | int) -> Path:
        """Operating-point record of a compared method (``dance.sota.record``, JSON)."""
        return self.metrics / model / "sota" / f"{method}_{point}.json"

    def sota_checkpoint(self, model: str, name: str) -> Path:
        """Final weights of a compared method's network (pruned net, selector, ...)."""
        return self.work / "checkpoints" / model / "sota" / f"{name}.pt"

    def sota_state_dir(self, model: str, name: str) -> Path:
        """Per-epoch resumable state of a compared method's training."""
        return self.work / "checkpoints" / model / "sota" / name

    def sota_history(self, model: str, name: str) -> Path:
        """Per-epoch training curve of a compared method's network."""
        return self.metrics / model / "sota" / f"{name}_history.csv"

    def sota_bench(self, model: str) -> Path:
        """Host latency of dense vs every structurally smaller compared network."""
        return self.metrics / model / "bench_sota.csv"

    @property
    def comparison(self) -> Path:
        """One row per method × model × operating point, dense and DANCE included."""
        return self.metrics / "comparison.csv"

    @property
    def comparison_literature(self) -> Path:
        """Quoted numbers of the literature, with their sources (never measured here)."""
        return self.metrics / "comparison_literature.csv"

    @property
    def comparison_matched(self) -> Path:
        """DANCE vs the best other method at matched accuracy, per model and preset."""
        return self.metrics / "comparison_matched.csv"

    # devices (ONNX export, host ONNX Runtime, Jetson Nano, Snapdragon) ---------------
    @property
    def device_bundle(self) -> Path:
        """Everything a device needs: ONNX models, clips, PyTorch logits, manifest, runner."""
        return self.work / "devices" / "bundle"

    @property
    def onnx_export_check(self) -> Path:
        """ONNX Runtime vs PyTorch on the bundle's clips, per exported model."""
        return self.metrics / "onnx_export.json"

    @property
    def bench_onnx(self) -> Path:
        """Host ONNX Runtime latency, dense vs DANCE side by side (per-call times in .json)."""
        return self.metrics / "bench_onnx.csv"

    def device_logs(self, device: str) -> Path:
        """Logs of one device: fetched by its rule, or placed here by hand."""
        return self.results / "devices" / device

    def device_latency_table(self, device: str, model: str) -> Path:
        """Per-layer latency table of `model` measured on `device` by the runner (the host
        table's columns, + ``.json``: its conditions); absent when the device did not
        measure it. ``aap.latency_table_file`` may name it to train for that device."""
        return self.device_logs(device) / model / "latency_table.csv"

    @property
    def gpu_result(self) -> Path:
        """What the GPU check (scripts/gpu_check.sh) measured on a CUDA GPU, in the format of
        a device result; absent until a GPU check has run."""
        return self.device_logs("gpu") / "result.json"

    def device_result(self, device: str) -> Path:
        """One device's parsed measurement, or "not measured" and why."""
        return self.metrics / f"device_{device}.json"

    @property
    def devices_summary(self) -> Path:
        """Per device × model × method: latency, speed-up, power, energy, status."""
        return self.metrics / "devices.csv"

    # figures ------------------------------------------------------------------------
    def figure(self, name: str, ext: str = "png") -> Path:
        return self.figures / f"{name}.{ext}"

    # dynamic SOTA baselines (dance.sota.dynamic: FBS gating, frame skipping) ----------
    # Weights: Paths.checkpoint(model, "<method>@<K>") (one training stage per point).
    def sota_dynamic_record(self, model: str, method: str, point: int | str) -> Path:
        """Operating-point record (dance.sota.record) of a dynamic baseline; the folder
        and pattern of the SOTA records (``metrics/<model>/sota/<method>_<point>.json``)."""
        return self.metrics / model / "sota" / f"{method}_{point}.json"

    def sota_dynamic_clips(self, model: str, method: str, point: int | str) -> Path:
        """Per test clip: correct, MACs (overhead included), overhead, kept channels/frames."""
        return self.metrics / model / "sota" / f"{method}_{point}_clips.csv"
    # paper tables, claims, provenance (dance.report) ----------------------------------
    @property
    def tables(self) -> Path:
        return self.results / "tables"

    def table(self, name: str, ext: str = "csv") -> Path:
        """A paper table (T1–T4) as CSV (raw numbers), Markdown or LaTeX (formatted)."""
        return self.tables / f"{name}.{ext}"

    @property
    def claims(self) -> Path:
        """One row per claim of the paper: its value, the measured one, the verdict."""
        return self.results / "claims.csv"

    @property
    def provenance(self) -> Path:
        """Code commit, config fingerprint, package versions, CPU; the run date apart."""
        return self.results / "provenance.json"
