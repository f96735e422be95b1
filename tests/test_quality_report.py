"""The cost-and-quality section: rebuilt from quality.json beside a run's results, found via --otter."""

from __future__ import annotations

import json

from factories import make_results, write_run

from otterbench.results.report import build_report

QUALITY = {
    "task": "args",
    "reference_arm": "args-faithful",
    "weights": "distilled",
    "held_out_prompts": 11,
    "max_new_tokens": 16,
    "k": 10,
    "weight": 1.0,
    "arms": [
        {"arm": "base", "agreement_with_args": 0.25, "mean_reward": -0.5, "teacher_forced_agreement": None},
        {
            "arm": "args-faithful",
            "agreement_with_args": 1.0,
            "mean_reward": 0.75,
            "teacher_forced_agreement": None,
        },
        {
            "arm": "args-token",
            "agreement_with_args": 0.5,
            "mean_reward": 0.25,
            "teacher_forced_agreement": 0.625,
        },
        {
            "arm": "otter-args",
            "agreement_with_args": 0.375,
            "mean_reward": 0.125,
            "teacher_forced_agreement": 0.5,
        },
    ],
}


def test_the_report_sets_quality_beside_cost(tmp_path):
    distilled = tmp_path / "distilled"
    distilled.mkdir()
    (distilled / "quality.json").write_text(json.dumps(QUALITY))
    arms = ("base", "args-faithful", "args-optimized", "args-token", "otter-args")
    results = make_results(arms=arms, otter_path=str(distilled))
    run_dir = write_run(tmp_path / "runs", results)
    report = next(p for p in build_report([run_dir]) if p.name == "report.md").read_text()
    section = report[report.index("## Quality beside cost") :].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in section.splitlines() if line.startswith("| ")}
    assert "| 50.0% | 62.5% | +0.2500 |" in rows["args-token"]
    assert "| 100.0% | - | +0.7500 |" in rows["args-faithful"]
    base_ms = results["arms"][0]["latency"]["total_s"]["median"] * 1e3
    token_ms = results["arms"][3]["latency"]["total_s"]["median"] * 1e3
    assert rows["args-token"].endswith(f"| +{token_ms - base_ms:.1f} ms |")
    # without quality data the section is left out
    plain = write_run(tmp_path / "plain", make_results(arms=arms))
    assert (
        "## Quality beside cost"
        not in next(p for p in build_report([plain]) if p.name == "report.md").read_text()
    )
