"""Reward-model evaluation: score a JSONL of candidate kernels with `solgym score`'s machinery and compare
a learned reward (here a stand-in: each candidate's `predicted` field) with the measured SOL reward.

    python examples/reward_model_eval.py                     # writes candidates.jsonl, scores, compares
    python examples/reward_model_eval.py --candidates mine.jsonl --out results.jsonl

The same run from the shell: `solgym score core candidates.jsonl -o results.jsonl --trace traces.jsonl`.
"""

import argparse
import json
import tempfile
from pathlib import Path

import solgym  # noqa: F401
from solgym import scoring
from solgym.env import problem_by_name, shared_pool

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--problem", default="rmsnorm_llama3_8b")
parser.add_argument("--candidates", help="candidates JSONL (default: a small generated set)")
parser.add_argument("--out", help="results JSONL (default: a temporary file)")
parser.add_argument("--devices", default="auto")
parser.add_argument("--workloads", nargs="*", help="uuid prefixes of the workloads to run (default: all)")
args = parser.parse_args()

work = Path(tempfile.mkdtemp(prefix="solgym-rm-"))
candidates = Path(args.candidates) if args.candidates else work / "candidates.jsonl"
if not args.candidates:
    kernel = (Path(problem_by_name(args.problem).path) / "solutions" / "triton_rmsnorm.py").read_text()
    variants = {
        "example": (kernel, 0.9),
        "no-weight": (kernel.replace("(normed * w)", "(normed)"), 0.7),  # skips the weight multiply: wrong
        "torch-compute": (
            "import torch\n\ndef run(hidden_states, weight):\n    return weight * hidden_states\n",
            0.4,
        ),
        "syntax-error": ("def run(hidden_states, weight:\n    pass\n", 0.1),
    }
    rows = [
        {"problem": args.problem, "candidate_id": cid, "code": code, "predicted": p}
        for cid, (code, p) in variants.items()
    ]
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))

results = Path(args.out) if args.out else work / "results.jsonl"
pool = shared_pool(args.devices)
scoring.score_file(scoring.problem_lookup("all"), candidates, results, pool=pool, workloads=args.workloads)
measured = {r["candidate_id"]: r for r in scoring.read_results(results)}
predicted = {
    json.loads(line).get("candidate_id"): json.loads(line).get("predicted")
    for line in candidates.read_text().splitlines()
}

print(f"{'candidate':16s} {'predicted':>9s} {'measured':>9s}  status")
for cid, row in measured.items():
    p = predicted.get(cid)
    print(
        f"{cid:16s} {p if p is not None else float('nan'):9.3f} {row.get('sol_score') or 0.0:9.3f}  {row['status']}"
    )

pairs = [
    (predicted[c], measured[c].get("sol_score") or 0.0) for c in measured if predicted.get(c) is not None
]
# Pairwise ranking accuracy: how often the learned reward orders two candidates as the measurement does.
agree = total = 0
for i, (p1, m1) in enumerate(pairs):
    for p2, m2 in pairs[i + 1 :]:
        if m1 != m2:
            total += 1
            agree += (p1 > p2) == (m1 > m2)
print(f"pairwise ranking accuracy {agree}/{total}")
print(scoring.format_summary(scoring.summarize(measured.values())))
