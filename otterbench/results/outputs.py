"""outputs.jsonl: what every arm generated, one line per arm and prompt, for people and other tools to check.

Each line: `arm`, `prompt_index` (position in the workload), `prompt_ids` (unpadded), `token_ids` (the N
generated ids of the last measured repeat) and `text` (those ids decoded with the base model's tokenizer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUTS_FILE = "outputs.jsonl"


def output_lines(records: list[Any], prompt_ids: Any, tokenizer: Any) -> list[dict[str, Any]]:
    """One dict per arm record (that finished and carried its ids) and prompt, in run then prompt order."""
    lines = []
    for record in records:
        for index, tokens in enumerate(record.token_ids or []):
            lines.append(
                {
                    "arm": record.name,
                    "prompt_index": index,
                    "prompt_ids": list(prompt_ids[index]),
                    "token_ids": list(tokens),
                    "text": tokenizer.decode(tokens),
                }
            )
    return lines


def write_outputs(run_dir: Path, records: list[Any], prompt_ids: Any, tokenizer: Any) -> Path:
    """Write outputs.jsonl into `run_dir` (replaced atomically); returns its path."""
    path = Path(run_dir) / OUTPUTS_FILE
    partial = path.with_suffix(".jsonl.tmp")
    with partial.open("w", encoding="utf-8") as file:
        for line in output_lines(records, prompt_ids, tokenizer):
            file.write(json.dumps(line, ensure_ascii=False) + "\n")
    partial.replace(path)
    return path
