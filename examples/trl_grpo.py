"""GRPO with TRL, rewarded by solgym: the dataset names each prompt's problem, `reward_func()` scores
every completion's kernel (the whole batch goes to the GPU pool at once; infra failures come back None).

    python examples/trl_grpo.py                  # scores two canned completions the way GRPOTrainer calls it
    python examples/trl_grpo.py --train MODEL    # a real GRPO run (needs `pip install trl datasets`)
"""

import argparse
from pathlib import Path

import gymnasium as gym

import solgym  # noqa: F401  (registers the solgym/* envs)
from solgym.integrations.trl import reward_func

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--problem", default="rmsnorm_llama3_8b")
parser.add_argument("--train", metavar="MODEL", help="run GRPOTrainer on this model instead of the demo")
parser.add_argument("--fresh-shapes", type=int, default=1)
parser.add_argument("--workloads", nargs="*", help="uuid prefixes of the workloads to run (default: all)")
args = parser.parse_args()

# One prompt per problem: the env's own statement is the prompt.
env = gym.make(f"solgym/{args.problem}-v0")
statement = env.reset(seed=0)[0]["text"]
rows = [{"prompt": [{"role": "user", "content": statement}], "problem": args.problem}]
reward = reward_func(fresh_shapes=args.fresh_shapes, workloads=args.workloads)

if args.train:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    config = GRPOConfig(
        output_dir="grpo-solgym", num_generations=8, max_completion_length=4096, logging_steps=1
    )
    trainer = GRPOTrainer(
        model=args.train, reward_funcs=[reward], args=config, train_dataset=Dataset.from_list(rows * 64)
    )
    trainer.train()
else:
    kernel = (Path(env.unwrapped.problem.path) / "solutions" / "triton_rmsnorm.py").read_text()
    completions = [
        [{"role": "assistant", "content": f"```python\n{kernel}```"}],
        [
            {
                "role": "assistant",
                "content": "```python\nimport torch\n\ndef run(hidden_states, weight):\n    return hidden_states\n```",
            }
        ],
    ]
    # Exactly how GRPOTrainer calls a reward function: prompts, completions, then the dataset's columns.
    rewards = reward(prompts=[rows[0]["prompt"]] * 2, completions=completions, problem=[args.problem] * 2)
    print(f"{reward.__name__}: {rewards}")
