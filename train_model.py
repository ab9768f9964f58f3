"""Train the signdigits model on dataset/x.npy and dataset/y.npy.

    python train_model.py                  # reproduces the bundled model.h5 and its report
    python train_model.py --epochs 5 --teacher-epochs 0 --output /tmp/quick.h5

Build the arrays first with `python -m signdigits build-dataset ../shared/sign-language-digits`.
"""

import argparse
import sys

import signdigits.backend  # noqa: F401  (TensorFlow quietly, before any module imports it)
from signdigits.data import DatasetError
from signdigits.training import TrainConfig, TrainingError, train

DEFAULTS = TrainConfig()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        description=(
            "Train the three-conv-layer signdigits CNN (distilled from a six-conv-layer "
            "teacher) and write the model plus a report folder beside it."
        ),
    )
    add = parser.add_argument
    add("--x", dest="x_path", help="images array (default: dataset/x.npy, or X.npy)")
    add("--y", dest="y_path", help="one-hot labels array (default: y.npy beside --x)")
    add(
        "--participants",
        dest="participants_path",
        help="participant id per row (default: participants.npy beside --x); "
        "without ids the split is stratified by digit instead",
    )
    add(
        "--output",
        default=DEFAULTS.output,
        help="where to write the model; its report folder goes beside it (default: model.h5)",
    )
    add("--epochs", type=positive_int, default=DEFAULTS.epochs, help="epochs for the model (default: %(default)s)")
    add(
        "--teacher-epochs",
        type=int,
        default=DEFAULTS.teacher_epochs,
        help="epochs for the six-conv-layer teacher it learns from; 0 trains without one "
        "(default: %(default)s)",
    )
    add("--batch-size", type=positive_int, default=DEFAULTS.batch_size, help="images per step (default: %(default)s)")
    add("--seed", type=int, default=DEFAULTS.seed, help="seed for split, init and augmentation (default: %(default)s)")
    add(
        "--resume",
        action="store_true",
        help="go on from the last finished epoch of an interrupted run with the same data "
        "and flags; the result is the same as an uninterrupted run's",
    )
    args = parser.parse_args(argv)
    return TrainConfig(**vars(args))


def main(argv=None) -> int:
    config = parse_args(argv)
    try:
        train(config)
    except (DatasetError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted; {config.output} was left as it was. "
            "`--resume` goes on from the last finished epoch, if one finished.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
