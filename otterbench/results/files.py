"""The results files: validate, load and write `results.json` / `arms.csv`, and derive tables from them.

`results.json` follows `otterbench/results/schema/results.schema.json` (draft 2020-12). Everything downstream
(report, compare, check, export) is rebuilt from these files alone.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from otterbench.arms.registry import counterparts
from otterbench.backends import STATIC_ENGINE, backend_names
from otterbench.backends.spec import EAGER_ENGINE
from otterbench.results.decode_savings import decode_saving, prefill_saving
from otterbench.results.reference import reference_arm
from otterbench.results.stats import bootstrap_saved_ci
from otterbench.saving import saved_pct

RESULTS_FILE = "results.json"
ARMS_FILE = "arms.csv"
SCHEMA_VERSION = 1
_MAX_MESSAGE = 160  # keep the one-line error readable when a bad value is a whole object


class ResultsError(ValueError):
    """A results file is missing, not JSON, or does not match the schema (one-line message)."""


@cache
def _shipped_schema_text() -> str:
    return (
        resources.files("otterbench").joinpath("results", "schema", "results.schema.json").read_text("utf-8")
    )


def results_schema() -> dict:
    """The results.json JSON Schema shipped with the package, its name enums filled from the registries.

    The engines a run may ask for and an arm may record come from the backend registry (otterbench/backends),
    so a registered backend is a valid engine at once.
    """
    schema = json.loads(_shipped_schema_text())
    engines = list(backend_names())
    schema["properties"]["config"]["properties"]["engine"]["enum"] = engines
    schema["$defs"]["arm"]["properties"]["engine"]["enum"] = [*engines, STATIC_ENGINE, None]
    return schema


def _check_sample_counts(data: dict) -> str | None:
    """JSON path of the first Summary whose n differs from len(samples), else None."""
    for i, arm in enumerate(data["arms"]):
        for name, summary in (arm.get("latency") or {}).items():
            if summary["n"] != len(summary["samples"]):
                return f"$.arms[{i}].latency.{name}: n={summary['n']} but {len(summary['samples'])} samples"
    return None


def _first_non_finite(value: Any, path: str = "$") -> str | None:
    """`$.arms[0].latency.tpot_s.samples[3]: nan` for the first NaN or infinity in `value`, else None.

    JSON has no NaN or infinity (Python's json module reads and writes them anyway), and no figure of a run
    may be one: a NaN latency compares false to every threshold and would pass any check.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: {value} is not a finite number"
    if isinstance(value, dict):
        children = ((f"{path}.{key}", child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{i}]", child) for i, child in enumerate(value))
    else:
        return None
    return next((found for p, child in children if (found := _first_non_finite(child, p))), None)


def validate_results(data: Any, source: str = RESULTS_FILE) -> None:
    """Raise ResultsError naming `source`, the JSON path and the problem unless `data` fits the schema.

    Beyond the schema: every number finite (no NaN, no infinity) and every Summary's n equal to its samples.
    """
    import jsonschema  # only validation needs it; writing results does not

    non_finite = _first_non_finite(data)
    if non_finite is not None:
        raise ResultsError(f"{source}: {non_finite} (fix the field or re-run otterbench run)")

    validator = jsonschema.Draft202012Validator(results_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        message = (
            error.message if len(error.message) <= _MAX_MESSAGE else error.message[:_MAX_MESSAGE] + "..."
        )
        raise ResultsError(f"{source}: {error.json_path}: {message} (fix the field or re-run otterbench run)")
    mismatch = _check_sample_counts(data)
    if mismatch is not None:
        raise ResultsError(f"{source}: {mismatch} (fix the field or re-run otterbench run)")


def results_path(run_dir_or_file: str | Path) -> Path:
    """The results.json of a run folder, or the file itself."""
    path = Path(run_dir_or_file)
    return path / RESULTS_FILE if path.is_dir() else path


def load_run(run_dir_or_file: str | Path) -> dict:
    """Read and validate a run's results.json; any problem is one ResultsError line."""
    path = results_path(run_dir_or_file)
    if not path.is_file():
        raise ResultsError(f"{path}: no such results file (pass a run folder holding {RESULTS_FILE})")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(
            f"{path}: not valid JSON ({exc}); the run was cut short or the file edited"
        ) from exc
    validate_results(data, source=str(path))
    return data


def _write_atomic(path: Path, write: Any) -> None:
    """Write via a temp file in the same folder, fsync, then os.replace: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    _write_atomic(Path(path), lambda handle: json.dump(data, handle, indent=2, allow_nan=False))


def write_csv_atomic(path: str | Path, df: pd.DataFrame) -> None:
    """Write `df` as CSV (no index) to `path` atomically."""
    _write_atomic(Path(path), lambda handle: df.to_csv(handle, index=False))


def _summary_value(arm: dict, metric: str, field: str) -> float | None:
    latency = arm.get("latency")
    return None if latency is None else latency[metric][field]


def arms_frame(results: dict) -> pd.DataFrame:
    """One row per arm: status, tokens, memory (bytes) and latency summaries (s), energy (J)."""
    rows = []
    for arm in results["arms"]:
        memory = arm.get("memory") or {}
        components = memory.get("weights_by_component") or {}
        energy = arm.get("energy") or {}
        energy_j = energy.get("energy_j") or {}
        rows.append(
            {
                "name": arm["name"],
                "role": arm["role"],
                "status": arm["status"],
                "error": arm["error"],
                "new_tokens": arm["new_tokens"],
                "peak_bytes": memory.get("peak_bytes"),
                "weights_bytes": memory.get("weights_bytes"),
                "base_weights_bytes": components.get("base"),
                "separate_weights_bytes": components.get("separate"),
                "inserted_weights_bytes": components.get("inserted"),
                "memory_method": memory.get("method"),
                "ttft_median_s": _summary_value(arm, "ttft_s", "median"),
                "tpot_p50_s": _summary_value(arm, "tpot_s", "median"),
                "tpot_p90_s": _summary_value(arm, "tpot_s", "p90"),
                "tpot_p99_s": _summary_value(arm, "tpot_s", "p99"),
                "total_median_s": _summary_value(arm, "total_s", "median"),
                "total_p90_s": _summary_value(arm, "total_s", "p90"),
                "repeats_n": _summary_value(arm, "total_s", "n"),
                "energy_median_j": energy_j.get("median"),
                "j_per_token": energy.get("j_per_token"),
            }
        )
    return pd.DataFrame(rows)


def arm_by_name(results: dict) -> dict[str, dict]:
    """The arms of a run keyed by name."""
    return {arm["name"]: arm for arm in results["arms"]}


# The run settings that change what is measured, beside the workload: the decode engine (kernels, static
# caches), the arms' isolation (a process each or one shared), their schedule (round-robin or one after
# another: what a slow spell of the machine hits), torch threads per arm on CPU, the device map (placement
# over GPUs) and the yardstick's engine (the base's own numerics, which judge non-disruption). Each maps to
# the value a file written before the field existed ran with, where that is known (every run before
# --engine decoded eager); _UNKNOWN otherwise, and then an absent field is not compared.
_UNKNOWN = object()
_RUN_SETTINGS_BEFORE: dict[str, Any] = {
    "engine": EAGER_ENGINE,
    "schedule": _UNKNOWN,
    "cpu_threads": _UNKNOWN,
    "device_map": _UNKNOWN,
    "yardstick_engine": _UNKNOWN,
}


def _run_settings(results: dict) -> dict[str, Any]:
    """The run settings two runs must share (`isolation` is required at the top of every file)."""
    config = results["config"]
    settings = {name: config.get(name, before) for name, before in _RUN_SETTINGS_BEFORE.items()}
    return {**settings, "isolation": results["isolation"]}


def workload_signature(results: dict) -> dict:
    """The fields two runs must share for their numbers to be comparable: workload and run settings."""
    config = results["config"]
    return {
        "suite": results["suite"],
        "arms": sorted(config["arms"]),
        "profile": config["profile"],
        "max_new_tokens": config["max_new_tokens"],
        "k": config["k"],
        "weight": config["weight"],
        "alpha": config["alpha"],
        "filter_p": config.get("filter_p"),  # None: a run from before the setting existed
        "batch_size": config["batch_size"],
        "num_prompts": config["num_prompts"],
        "dtype": config["dtype"],
        "device": config["device"],
        "gpu_name": results["environment"]["gpu_name"],
        "otter_layout": results["otter"]["layout"],
        **_run_settings(results),
        "workload_fingerprint": results["workload"]["fingerprint"],
        "model_fingerprints": results["workload"]["model_fingerprints"],
    }


def describe_mismatch(a: dict, b: dict) -> list[str]:
    """One line per field on which results `a` and `b` differ, naming both values (a run setting absent from
    a file, whose value then is unknown, is not compared)."""
    sig_a, sig_b = workload_signature(a), workload_signature(b)
    lines = []
    for field in sig_a:
        if field == "model_fingerprints":
            roles = sorted(set(sig_a[field]) | set(sig_b[field]))
            for role in roles:
                fa, fb = sig_a[field].get(role), sig_b[field].get(role)
                if fa != fb:
                    lines.append(f"model_fingerprints.{role}: {fa!r} vs {fb!r}")
        elif _UNKNOWN in (sig_a[field], sig_b[field]):
            continue
        elif sig_a[field] != sig_b[field]:
            lines.append(f"{field}: {sig_a[field]!r} vs {sig_b[field]!r}")
    return lines


def _total_samples(arm: dict | None) -> list[float] | None:
    if arm is None or arm["status"] != "ok" or arm["latency"] is None:
        return None
    samples = arm["latency"]["total_s"]["samples"]
    return samples or None


def _peak(arm: dict | None) -> int | None:
    if arm is None or arm["status"] != "ok" or arm["memory"] is None:
        return None
    return arm["memory"]["peak_bytes"]


def _space_saving(base: dict | None, separate: dict, otter: dict) -> tuple[float | None, str | None]:
    peaks = [_peak(base), _peak(separate), _peak(otter)]
    if None in peaks:
        return None, "extra space: a peak memory figure is missing (arm failed or memory not measured)"
    value = saved_pct(*peaks)
    if value is None:
        return None, "extra space: the separate arm's peak memory is not above base, so no extra to save"
    return value, None


def saving_entry(results_arms: list[dict], separate_name: str, n_boot: int = 2000, seed: int = 0) -> dict:
    """The savings record of one separate arm against its Otter counterpart, with reasons for any null."""
    arms = {arm["name"]: arm for arm in results_arms}
    otter_name = counterparts()[separate_name]
    base, separate, otter = reference_arm(arms), arms[separate_name], arms.get(otter_name)
    notes: list[str] = []
    space, space_note = _space_saving(base, separate, otter) if otter else (None, None)
    time_pct, time_ci = None, None
    samples = [_total_samples(base), _total_samples(separate), _total_samples(otter)]
    if None in samples:
        notes.append(
            "extra time: an arm of base/separate/otter did not finish, so there is nothing to compare"
        )
    else:
        time_pct = saved_pct(*(float(np.median(s)) for s in samples))
        if time_pct is None:
            notes.append("extra time: the separate arm is not slower than base, so no extra time to save")
        else:
            time_ci = bootstrap_saved_ci(*samples, n_boot=n_boot, seed=seed)
    if space_note:
        notes.append(space_note)
    decode = decode_saving(base, separate, otter, n_boot, seed)  # TPOT-based, beside total time
    decode_note = decode.pop("decode_note")
    if decode_note:
        notes.append(decode_note)
    return {
        "separate_arm": separate_name,
        "otter_arm": otter_name,
        "extra_space_saved_pct": space,
        "extra_time_saved_pct": time_pct,
        # peak memory is one reading per arm, not a sample set: no interval to give
        "extra_space_saved_ci95": None,
        "extra_time_saved_ci95": list(time_ci) if time_ci else None,
        "time_metric": "total_s",
        **decode,
        **prefill_saving(base, separate, otter),
        "notes": notes,
    }


def compute_savings(arms: list[dict], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """The results.json `savings` list: one record per separate arm present in `arms`."""
    names = [arm["name"] for arm in arms]
    return [saving_entry(arms, name, n_boot, seed) for name in names if name in counterparts()]
