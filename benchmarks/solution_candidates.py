"""Every shipped solution of a suite as a candidates JSONL for `solgym score` (one line per solution file).

python benchmarks/solution_candidates.py [envs/core] > candidates.jsonl
solgym score core candidates.jsonl -o scores.jsonl --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(path: Path) -> str:
    """One markdown row per scored solution: status, reward, and the SOL score and speedup over T_b of its
    smallest and largest workloads."""
    rows = [
        "| solution | status | reward | SOL score smallest / largest | speedup over T_b smallest / largest |",
        "|---|---|---|---|---|",
    ]
    for line in sorted(path.read_text().splitlines()):
        if not line.strip():
            continue
        record = json.loads(line)
        workloads = (record.get("result") or {}).get("workloads") or []
        ends = [workloads[0], workloads[-1]] if workloads else []

        def pair(key: str, fmt: str, ends: list = ends) -> str:
            values = [w.get(key) for w in ends]
            return " / ".join("-" if v is None else format(v, fmt) for v in values) or "-"

        reward = record.get("sol_score")
        rows.append(
            f"| `{record['candidate_id']}` | {record['status']} | "
            f"{'-' if reward is None else f'{reward:.3f}'} | {pair('sol_score', '.3f')} | {pair('speedup', '.2f')} |"
        )
    return "\n".join(rows)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--table":
        print(table(Path(sys.argv[2])))
        return
    suite = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "envs" / "core"
    for file in sorted(suite.glob("*/solutions/*.py")):
        problem = file.parent.parent.name
        line = {"problem": problem, "candidate_id": f"{problem}/{file.stem}", "code": file.read_text()}
        print(json.dumps(line))


if __name__ == "__main__":
    main()
