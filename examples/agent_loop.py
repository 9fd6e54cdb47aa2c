"""An agent loop: an LLM writes a kernel, reads the env's feedback, and refines it for a few turns.

Any OpenAI-compatible chat endpoint works (vLLM, SGLang, llama.cpp server, OpenAI...):

    python examples/agent_loop.py --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-Coder-7B-Instruct

`--offline` replays canned replies instead (a first attempt with a syntax error, then the example kernel),
which is what the tests run:

    TRITON_INTERPRET=1 python examples/agent_loop.py --offline --workloads 4f1c2a7e --fresh-shapes 0
"""

import argparse
import json
import os
import urllib.request
from pathlib import Path

import gymnasium as gym

import solgym  # noqa: F401  (registers the solgym/* envs)
from solgym.action import extract_code

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--problem", default="rmsnorm_llama3_8b")
parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://localhost:8000/v1"))
parser.add_argument("--model", default="default")
parser.add_argument("--turns", type=int, default=4)
parser.add_argument("--offline", action="store_true", help="canned replies, no endpoint")
parser.add_argument("--workloads", nargs="*", help="uuid prefixes of the workloads to run (default: all)")
parser.add_argument("--fresh-shapes", type=int, default=1)
args = parser.parse_args()

env = gym.make(
    f"solgym/{args.problem}-v0",
    max_turns=args.turns,
    workloads=args.workloads,
    fresh_shapes=args.fresh_shapes,
)
obs, info = env.reset(seed=0)

example = (Path(env.unwrapped.problem.path) / "solutions" / "triton_rmsnorm.py").read_text()
canned = [
    "My first try:\n```python\ndef run(hidden_states, weight:\n    pass\n```",
    f"Fixed the signature:\n```python\n{example}```",
]


def ask(messages: list) -> str:
    """One chat completion from the endpoint (or the next canned reply offline)."""
    if args.offline:
        return canned[min(len([m for m in messages if m["role"] == "assistant"]), len(canned) - 1)]
    body = json.dumps({"model": args.model, "messages": messages, "temperature": 0.2}).encode()
    request = urllib.request.Request(
        f"{args.base_url.rstrip('/')}/chat/completions",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'none')}",
        },
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)["choices"][0]["message"]["content"]


messages = [
    {
        "role": "system",
        "content": "You write fast GPU kernels. Answer with one ```python block holding the whole module.",
    },
    {"role": "user", "content": obs["text"]},
]
done = False
while not done:
    reply = ask(messages)
    messages.append({"role": "assistant", "content": reply})
    obs, reward, terminated, truncated, info = env.step(extract_code(reply) or reply)
    done = terminated or truncated
    print(
        f"turn {obs['turn']}: {info['result'].status.value:20s} reward {reward:.3f}  best {info['best']:.3f}"
    )
    feedback = obs["text"][obs["text"].rindex("## Attempt") :]
    messages.append({"role": "user", "content": feedback + "\n\nImprove the kernel."})
print(f"episode over after {obs['turn']} turns: best SOL reward {info['best']:.3f}")
env.close()
