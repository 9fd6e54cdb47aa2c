"""How long static analysis takes: decode + analyze per action, by action size, and the INVALID_ACTION gate.

Run from the repository root:  python benchmarks/analysis_speed.py [--repeat 20]
Prints a markdown table (p50 / p95 / max in ms) to paste into docs/analysis.md with the machine and date.
Actions are the corpus under tests/corpus, and modules of 8-64 KB built by concatenating the corpus's
look-alikes (every copy renamed, one `run` at the end), analysed under the strict policy.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solgym.action import InvalidAction, decode  # noqa: E402
from solgym.analysis import analyze  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def corpus_sources(kind: str) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((CORPUS / kind).glob("*.py"))]


def signature(source: str) -> tuple[list[str], list[str]]:
    """The inputs/outputs a corpus file declares in its header (default x -> out)."""
    found = dict(re.findall(r"^# (inputs|outputs): (.*)$", source, re.MULTILINE))
    return found.get("inputs", "x").replace(",", " ").split(), found.get("outputs", "out").replace(
        ",", " "
    ).split()


def module_of_size(target: int, pieces: list[str]) -> str:
    """A valid module of about `target` bytes made of renamed copies of the look-alikes."""
    parts, total, copy = [], 0, 0
    while True:
        for source in pieces:
            renamed = re.sub(r"^def run\(", f"def run_{copy}(", source, flags=re.MULTILINE)
            if total + len(renamed) > target - 64 - 10 * copy:
                everything = ", ".join(f"run_{k}" for k in range(copy))
                return (
                    "\n\n".join(parts)
                    + f"\n\n\n_ALL = ({everything},)\n\n\ndef run(x):\n    return _ALL[0](x)\n"
                )
            parts.append(renamed)
            total += len(renamed) + 2
            copy += 1


def timed(source: str, inputs: list[str], outputs: list[str], repeat: int) -> tuple[list[float], bool]:
    times, ok = [], False
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            ok = analyze(decode(source, inputs=inputs, outputs=outputs), cache=False).ok
        except InvalidAction:
            ok = False
        times.append((time.perf_counter() - start) * 1000)
    return times, ok


def row(label: str, sizes: list[int], times: list[float]) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    size = (
        f"{min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f}"
        if min(sizes) != max(sizes)
        else f"{sizes[0] / 1024:.1f}"
    )
    return (
        f"| {label} | {size} | {len(times)} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs per action")
    args = parser.parse_args()
    legit, cheats = corpus_sources("legit"), corpus_sources("cheat")
    timed(legit[0], *signature(legit[0]), repeat=1)  # first call loads libcst's native parser
    print(
        f"python {platform.python_version()}, {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{time.strftime('%Y-%m-%d')}, repeat={args.repeat}\n"
    )
    print("| actions | KB | runs | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for label, sources in (("corpus look-alikes (accepted)", legit), ("corpus cheats (rejected)", cheats)):
        all_times, sizes = [], []
        for source in sources:
            times, _ = timed(source, *signature(source), repeat=args.repeat)
            all_times += times
            sizes.append(len(source.encode()))
        print(row(label, sizes, all_times))
    strict_legit = [s for s in legit if "# policy: permissive" not in s]
    for kb in (8, 16, 32, 64):
        source = module_of_size(kb * 1024, strict_legit)
        times, ok = timed(source, ["x"], ["out"], repeat=max(3, args.repeat // 4))
        print(
            row(
                f"look-alikes concatenated ({'accepted' if ok else 'rejected'})",
                [len(source.encode())],
                times,
            )
        )
    pathological = {
        "10,000 nested parentheses": "x = " + "(" * 10_000 + ")" * 10_000,
        "10,000-long attribute chain": "x = a" + ".b" * 10_000,
        "10,000-term `and` chain": "x = " + " and ".join(["a"] * 10_000),
        "240 KB `+` chain": "x = " + "+".join(["a"] * 120_000),
        "10 MB of text": "x = 1\n" * 1_750_000,
        "random bytes (4 KB)": bytes(range(256)).decode("latin-1") * 16,
    }
    print("\n| INVALID_ACTION input | runs | p50 ms | max ms |")
    print("|---|---|---|---|")
    for label, source in pathological.items():
        times, _ = timed(source, ["x"], ["out"], repeat=5)
        print(f"| {label} | {len(times)} | {statistics.median(times):.1f} | {max(times):.1f} |")


if __name__ == "__main__":
    main()
