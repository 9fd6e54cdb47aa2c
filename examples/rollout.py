"""A scripted rollout: make a shipped problem's env, step it with the example kernel, read reward and feedback.

python examples/rollout.py                                   # every workload, on the GPU if there is one
TRITON_INTERPRET=1 python examples/rollout.py --workloads 4f1c2a7e --fresh-shapes 0   # CPU, smallest shape
"""

import argparse
from pathlib import Path

import gymnasium as gym

import solgym  # noqa: F401  (registers the solgym/* envs)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--problem", default="rmsnorm_llama3_8b")
parser.add_argument("--workloads", nargs="*", help="uuid prefixes of the workloads to run (default: all)")
parser.add_argument("--fresh-shapes", type=int, default=1, help="hidden shapes drawn per evaluation")
args = parser.parse_args()

env = gym.make(f"solgym/{args.problem}-v0", workloads=args.workloads, fresh_shapes=args.fresh_shapes)
obs, info = env.reset(seed=0)
print(obs["text"].splitlines()[0])
print(f"T_SOL {obs['t_sol_us'][0]:.2f} us (geometric mean over the shown workloads), policy {info['policy']}")

problem_dir = env.unwrapped.problem.path
kernel = (Path(problem_dir) / "solutions" / "triton_rmsnorm.py").read_text()
obs, reward, terminated, truncated, info = env.step(kernel)

result = info["result"]
print(f"status {result.status.value}  reward {reward:.3f}  terminated {terminated}  truncated {truncated}")
print(obs["text"][obs["text"].index("## Attempt") :])
env.close()
