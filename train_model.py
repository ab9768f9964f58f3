"""Train the signdigits models on the dataset arrays (dataset/*.npy).

    python train_model.py --localizer      # the hand localizer, localizer.h5 (first)
    python train_model.py                  # the classifier, model.h5, and its report
    python train_model.py --epochs 5 --output /tmp/quick.h5   # a quick trial

Build the arrays first with `python -m signdigits build-dataset ../shared/sign-language-digits`.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

try:
    import signdigits.backend  # noqa: F401  (TensorFlow quietly, before any module imports it)
except ImportError as exc:  # signdigits.MissingTrainExtra: the app's install has no TensorFlow
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
from signdigits.classifier_training import train  # noqa: E402
from signdigits.data import DatasetError  # noqa: E402
from signdigits.localizer_training import train_localizer  # noqa: E402
from signdigits.training import INIT_LEARNING_RATE_SHARE, LocalizerConfig, TrainConfig, TrainingError  # noqa: E402

DEFAULTS = TrainConfig()
LOCALIZER_DEFAULTS = LocalizerConfig()
#: --quick: both models within a quarter hour on two cores, for trying a change (worse
#: than the full runs; one draw of the pictures made at random for the temperature and the
#: report); written to QUICK_FOLDER, never over the bundled files.
QUICK_LOCALIZER_EPOCHS, QUICK_EPOCHS, QUICK_DRAWS, QUICK_FOLDER = 20, 100, 1, Path("runs/quick")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv=None) -> list[TrainConfig | LocalizerConfig]:
    """The runs the command line asks for, in order."""
    parser = argparse.ArgumentParser(
        description=(
            "Train the three-conv-layer signdigits CNN and write the model plus a report "
            "folder beside it; with --localizer, train the hand localizer it reads crops "
            "from (do that first)."
        ),
    )
    add = parser.add_argument
    add(
        "--localizer",
        dest="train_localizer",
        action="store_true",
        help="train the hand localizer (default output: localizer.h5) instead of the classifier",
    )
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
        help="where to write the model; its report folder goes beside it "
        "(default: model.h5, or localizer.h5 with --localizer)",
    )
    add("--epochs", type=positive_int, help=f"epochs (default: {DEFAULTS.epochs}, "
        f"localizer {LOCALIZER_DEFAULTS.epochs})")
    add(
        "--teacher-epochs",
        type=int,
        default=DEFAULTS.teacher_epochs,
        help="epochs for the six-conv-layer teacher it learns from; 0 trains without one "
        "(default: %(default)s)",
    )
    add("--steps-per-epoch", type=positive_int, help=f"steps per epoch (default: "
        f"{DEFAULTS.steps_per_epoch}, localizer {LOCALIZER_DEFAULTS.steps_per_epoch})")
    add("--batch-size", type=positive_int, help=f"images per step (default: {DEFAULTS.batch_size}, "
        f"localizer {LOCALIZER_DEFAULTS.batch_size})")
    add("--seed", type=int, default=DEFAULTS.seed,
        help="seed for init, batches and augmentation (default: %(default)s)")
    add("--split-seed", type=int, default=DEFAULTS.split_seed,
        help="seed of the split by person; keep the localizer's (default: %(default)s)")
    add("--quick", action="store_true", help=f"train the localizer ({QUICK_LOCALIZER_EPOCHS} epochs) "
        f"and then the classifier ({QUICK_EPOCHS} epochs) into {QUICK_FOLDER}/ (13-26 min on two cores), "
        "for trying a change")
    add(
        "--resume",
        action="store_true",
        help="go on from the last finished epoch of an interrupted run with the same data "
        "and flags; the result is the same as an uninterrupted run's",
    )
    add("--backgrounds", type=positive_int, help=f"procedural backgrounds made for the run's bank "
        f"(default: {DEFAULTS.backgrounds}; the real photos join them)")
    add("--scenes", dest="scenes_dir", help="the real scenes' folder: webcam-hands/ and caltech101/ "
        "(default: ../shared/scenes)")
    add("--init", help="start from this trained file's weights (a classifier's, or with --localizer a "
        "localizer's) instead of random ones: a second "
        f"training cycle at {INIT_LEARNING_RATE_SHARE:g} of the learning rate (with --epochs, e.g. 150)")
    add(
        "--localizer-file",
        dest="localizer",
        default=DEFAULTS.localizer,
        help="the hand localizer the classifier's crops are framed by (default: localizer.h5)",
    )
    given = {key: value for key, value in vars(parser.parse_args(argv)).items() if value is not None}
    localizer_only, quick = given.pop("train_localizer"), given.pop("quick")
    # what is not given takes each run's own default (output, epochs, steps and batch differ)
    classifier = TrainConfig(**given)
    localizer = LocalizerConfig(**{k: v for k, v in given.items() if k in LocalizerConfig.__dataclass_fields__})
    if quick:
        localizer = replace(localizer, output=str(QUICK_FOLDER / "localizer.h5"), epochs=QUICK_LOCALIZER_EPOCHS)
        return [localizer, replace(classifier, output=str(QUICK_FOLDER / "model.h5"), epochs=QUICK_EPOCHS,
                                   localizer=localizer.output, calibration_draws=QUICK_DRAWS,
                                   test_draws=QUICK_DRAWS)]  # fmt: skip
    return [localizer] if localizer_only else [classifier]


def main(argv=None) -> int:
    for config in parse_args(argv):
        if (status := run(config)) != 0:
            return status
    return 0


def run(config: TrainConfig | LocalizerConfig) -> int:
    try:
        (train if isinstance(config, TrainConfig) else train_localizer)(config)
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
