"""Monte-Carlo study of the distance-d repetition code under independent bit-flip noise.

A plain command-line script. Each shot flips each of ``distance`` physical bits with
probability ``noise``; majority voting decodes; a logical error is a wrong majority. Prints the
result as one JSON object, or appends it as a CSV row with ``--csv PATH``.

    python repetition.py --noise 0.05 --distance 3 --shots 5000 [--seed 1] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from pathlib import Path


def logical_error_exact(noise: float, distance: int) -> float:
    """Probability that more than half of the bits flip."""
    return sum(
        math.comb(distance, k) * noise**k * (1 - noise) ** (distance - k)
        for k in range(distance // 2 + 1, distance + 1)
    )


def simulate(noise: float, distance: int, shots: int, rng: random.Random) -> dict[str, float]:
    failures = sum(sum(rng.random() < noise for _ in range(distance)) > distance // 2 for _ in range(shots))
    rate = failures / shots
    return {
        "noise": noise,
        "distance": distance,
        "shots": shots,
        "logical_error_rate": rate,
        "logical_fidelity": 1 - rate,
        "logical_error_exact": logical_error_exact(noise, distance),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, required=True)
    parser.add_argument("--distance", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--csv", type=Path, default=None, help="append the result to this CSV file")
    args = parser.parse_args(argv)
    if args.distance < 1 or args.distance % 2 == 0:
        parser.error("--distance must be a positive odd number")
    print(f"simulating d={args.distance} p={args.noise} for {args.shots} shots", file=sys.stderr)
    row = simulate(args.noise, args.distance, args.shots, random.Random(args.seed))
    if args.csv is None:
        print(json.dumps(row))
        return 0
    new = not args.csv.exists()
    with args.csv.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
