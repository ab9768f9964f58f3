"""The spread over seeds: train both models with several seeds, print the evaluate
table of each and their range.

    python benchmarks/seed_spread.py --seeds 0 1 2 --out runs/spread

Each seed is a full ``python train_model.py --localizer --seed S`` (about half an hour on
2 cores), then ``python train_model.py --seed S`` framed by that localizer (about half an
hour more), with the same people, places and categories held out (``--split-seed`` stays
0), so the spread is that of initialisation, batches and augmentation.
``--bundled-localizer`` trains only the classifiers, with the bundled localizer. A seed
whose report already exists under ``--out`` is not trained again.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import ROOT  # puts the project on the path

from signdigits.summary import SCORE_KEYS


def train(seed: int, out: Path, own_localizer: bool = True) -> dict:
    model = out / f"seed_{seed}" / "model.h5"
    localizer = model.with_name("localizer.h5") if own_localizer else ROOT / "localizer.h5"
    report = model.with_name("model_report") / "report.json"
    if not report.is_file():
        model.parent.mkdir(parents=True, exist_ok=True)
        if not localizer.is_file():
            subprocess.run([sys.executable, "train_model.py", "--localizer", "--seed", str(seed),
                            "--output", str(localizer)], cwd=ROOT, check=True)  # fmt: skip
        subprocess.run([sys.executable, "train_model.py", "--seed", str(seed), "--output", str(model),
                        "--localizer-file", str(localizer)], cwd=ROOT, check=True)  # fmt: skip
    return json.loads(report.read_text())


def table(reports: dict[int, dict]) -> str:
    seeds = sorted(reports)
    variants = list(reports[seeds[0]]["test"]["variants"])
    lines = ["| the photo | " + " | ".join(f"seed {s}" for s in seeds) + " | range |",
             "|---|" + "---:|" * (len(seeds) + 1)]  # fmt: skip
    for variant in variants + ["ECE"]:
        if variant == "ECE":
            values = [reports[s]["test"]["ece"] for s in seeds]
            cells = [f"{v:.3f}" for v in values]
            spread = f"{min(values):.3f}–{max(values):.3f}"
        else:
            key = SCORE_KEYS.get(variant, "accuracy")
            values = [reports[s]["test"]["variants"][variant][key] for s in seeds]
            cells = [f"{v:.1%}" for v in values]
            spread = f"{min(values):.1%}–{max(values):.1%}"
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {spread} |")
    minutes = [reports[s]["training_seconds"] / 60 for s in seeds]
    lines.append("| training minutes | " + " | ".join(f"{m:.1f}" for m in minutes) + " | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "spread")
    parser.add_argument("--bundled-localizer", action="store_true",
                        help="train the classifiers only, framed by the bundled localizer")
    args = parser.parse_args()
    print(table({seed: train(seed, args.out, not args.bundled_localizer) for seed in args.seeds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
