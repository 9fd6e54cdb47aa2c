"""verl's custom reward function, by hand: `compute_score` for the naive reward manager, and
`compute_score_batch` for the batch manager (the whole batch goes to the GPU pool at once).

In a verl config:

    custom_reward_function:
      path: <site-packages>/solgym/integrations/verl.py
      name: compute_score_batch
    reward_model:
      reward_manager: batch

Each sample's `reward_model.ground_truth` names its solgym problem.

    python examples/verl_reward.py
"""

import argparse
import json
from pathlib import Path

import solgym  # noqa: F401
from solgym.env import problem_by_name
from solgym.integrations.verl import compute_score, compute_score_batch

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--problem", default="rmsnorm_llama3_8b")
args = parser.parse_args()

kernel = (Path(problem_by_name(args.problem).path) / "solutions" / "triton_rmsnorm.py").read_text()
response = f"<think>one program per row, fp32 accumulation</think>\n```python\n{kernel}```"

one = compute_score(
    data_source="solgym", solution_str=response, ground_truth=args.problem, extra_info={"index": 0}
)
print("compute_score:", json.dumps(one))

batch = compute_score_batch(
    data_sources=["solgym", "solgym"],
    solution_strs=[response, "I could not write it."],
    ground_truths=[args.problem, args.problem],
    extra_infos=[{"index": 1}, {"index": 2}],
)
print("compute_score_batch:", json.dumps([b["score"] for b in batch]), [b["status"] for b in batch])
