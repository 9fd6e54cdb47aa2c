"""How well T_b repeats between anchoring runs of the same problems (benchmarks/anchor_repeat.sh).

    python benchmarks/tb_repeat.py RUN_DIR RUN_DIR [--json]

Each RUN_DIR holds work/<problem>/validity.json as `solgym anchors --report` writes it (with `pass_ms`, the
time of each method in each pass). Prints, for the two runs' T_b (each the fastest of its passes) and for
their first passes alone (what a one-pass anchoring would have given): the median ratio, the share of
workloads within 3 / 5 / 10%, the range; the same by time band and by method; and the spread between the
passes of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

BANDS = ((0.0, 0.05), (0.05, 0.5), (0.5, float("inf")))  # ms


def load(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    records = {}
    for file in sorted(run.glob("work/*/validity.json")):
        for r in json.loads(file.read_text())["workloads"]:
            records[(r["problem"], r["workload_uuid"])] = r
    return records


def t_b(passes: list[dict[str, float]]) -> float | None:
    times = [t for p in passes for t in p.values()]
    return min(times) if times else None


def summary(ratios: list[float]) -> dict[str, Any]:
    if not ratios:
        return {"n": 0}
    dev = [abs(r - 1.0) for r in ratios]
    return {
        "n": len(ratios),
        "median": round(statistics.median(ratios), 4),
        **{f"within_{p}%": sum(d <= p / 100 for d in dev) for p in (3, 5, 10)},
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
    }


def compare(a: dict, b: dict) -> dict[str, Any]:
    keys = sorted(a.keys() & b.keys())
    out: dict[str, Any] = {"workloads": len(keys)}
    pairs = {"best_of_passes": [], "first_pass": []}
    by_band: dict[str, list[float]] = {}
    by_method: dict[str, list[float]] = {}
    for k in keys:
        pa, pb = a[k].get("pass_ms") or [], b[k].get("pass_ms") or []
        ta, tb = t_b(pa), t_b(pb)
        if ta and tb:
            pairs["best_of_passes"].append(tb / ta)
            lo, hi = next(band for band in BANDS if band[0] <= ta < band[1])
            by_band.setdefault(f"{lo}-{hi} ms", []).append(tb / ta)
        fa, fb = t_b(pa[:1]), t_b(pb[:1])
        if fa and fb:
            pairs["first_pass"].append(fb / fa)
        for method in ("eager", "compile"):
            ma = min((p[method] for p in pa if method in p), default=None)
            mb = min((p[method] for p in pb if method in p), default=None)
            if ma and mb:
                by_method.setdefault(method, []).append(mb / ma)
    out.update({name: summary(r) for name, r in pairs.items()})
    out["best_of_passes_by_band"] = {band: summary(r) for band, r in sorted(by_band.items())}
    out["best_of_passes_by_method"] = {m: summary(r) for m, r in by_method.items()}
    spreads = [r.get("spread", 0.0) for run in (a, b) for r in run.values()]
    out["pass_spread"] = {
        "n": len(spreads),
        "median": round(statistics.median(spreads), 4) if spreads else None,
        "within_5%": sum(s <= 0.05 for s in spreads),
        "max": round(max(spreads), 3) if spreads else None,
    }
    worst = sorted(keys, key=lambda k: -abs(_ratio(a[k], b[k]) - 1.0))[:8]
    out["worst"] = [
        {"problem": k[0], "uuid": k[1][:8], "axes": a[k]["axes"], "a": a[k]["pass_ms"], "b": b[k]["pass_ms"]}
        for k in worst
    ]
    return out


def _ratio(ra: dict, rb: dict) -> float:
    ta, tb = t_b(ra.get("pass_ms") or []), t_b(rb.get("pass_ms") or [])
    return tb / ta if ta and tb else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = compare(load(args.runs[0]), load(args.runs[1]))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"workloads in both runs: {result['workloads']}")
    for name in ("best_of_passes", "first_pass"):
        print(f"{name:>16}: {result[name]}")
    for band, s in result["best_of_passes_by_band"].items():
        print(f"{band:>16}: {s}")
    for method, s in result["best_of_passes_by_method"].items():
        print(f"{method:>16}: {s}")
    print(f"{'pass spread':>16}: {result['pass_spread']}")
    print("worst:")
    for w in result["worst"]:
        print(f"  {w['problem']} {w['uuid']} {w['axes']}\n    a {w['a']}\n    b {w['b']}")


if __name__ == "__main__":
    main()
