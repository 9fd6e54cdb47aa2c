"""Merge the anchors of an anchoring run (`benchmarks/anchor_gpus.sh`) into the shipped `rewards/` files.

    python benchmarks/ship_anchors.py DIR [--rewards ROOT]

DIR holds work/<problem>/<gpu-slug>/<suite>.jsonl as each problem's `solgym anchors --out` wrote it. The
lines of each (GPU, suite) go into ROOT/<gpu-slug>/<suite>.jsonl (default: solgym's shipped `rewards/`)
through `solgym.rewards.write_anchors`: a new line replaces the one with the same key. Lines on file under
the same timing protocol count as sentinels, so a run that moved any of them by more than the allowed
drift writes nothing and says which. Prints one JSON line per file written.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from solgym import data_dir, rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the anchoring run's directory")
    parser.add_argument("--rewards", type=Path, help="anchors root (default: the shipped rewards/)")
    args = parser.parse_args()
    root = args.rewards or data_dir("rewards")
    grouped: dict[tuple[str, str], list[rewards.Anchor]] = defaultdict(list)
    for file in sorted(args.run.glob("work/*/*/*.jsonl")):
        grouped[(file.parent.name, file.stem)].extend(rewards.read_anchors(file))
    if not grouped:
        raise SystemExit(f"no anchors under {args.run}/work/*/*/*.jsonl")
    for (slug, suite), anchors in sorted(grouped.items()):
        path = rewards.anchors_file(root, slug, suite)
        on_file = {a.key: a for a in rewards.comparable(rewards.read_anchors(path))}
        sentinels = {a.key: a.t_baseline_ms for a in anchors if a.key in on_file}
        rewards.write_anchors(path, anchors, remeasured_sentinels=sentinels or None)
        problems = {a.problem for a in anchors}
        print(json.dumps({"file": str(path), "anchors": len(anchors), "problems": len(problems)}))


if __name__ == "__main__":
    main()
