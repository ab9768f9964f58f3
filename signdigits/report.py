"""The training report: the evaluate table, calibration and curves, written beside the model.

Files in ``<model>_report/``: ``report.json`` (everything, machine-readable),
``report.md`` (the summary a person reads), ``confusion_matrix.png``,
``reliability.png`` and ``training_curves.png``. The app's Model page and the bundled-model
test read these files.
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from signdigits import NUM_CLASSES
from signdigits.evaluate import format_table
from signdigits.serving import CLASSIFIER

REPORT_JSON = "report.json"


def _plot_confusion(matrix, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            color = "white" if value > matrix.max() / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=9)
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_yticks(range(NUM_CLASSES))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title("Confusion matrix, unseen people, all variants")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_reliability(bins, ece, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect calibration")
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    ax.bar(centres, [b["accuracy"] for b in bins], width=widths, edgecolor="white",
           color="tab:blue", alpha=0.8, label="accuracy in the bin")  # fmt: skip
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="tab:orange",
            markersize=4, label="mean confidence")  # fmt: skip
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability, unseen people (ECE {ece:.3f})")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_curves(history, teacher_history, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=110)
    runs = [("model", history)] + ([("teacher", teacher_history)] if teacher_history else [])
    for name, run in runs:
        epochs = np.arange(1, len(run["loss"]) + 1)
        style = "-" if name == "model" else ":"
        loss_ax.plot(epochs, run["loss"], style, color="tab:blue", label=f"{name} train")
        loss_ax.plot(epochs, run["val_loss"], style, color="tab:orange", label=f"{name} validation")
        acc_ax.plot(epochs, run["accuracy"], style, color="tab:blue", label=f"{name} train")
        acc_ax.plot(epochs, run["val_accuracy"], style, color="tab:orange", label=f"{name} validation")
    loss_ax.set_title("loss (train is on augmented images)")
    acc_ax.set_title("accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    acc_ax.set_ylim(0.5, 1.0)
    acc_ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _markdown(report: dict) -> str:
    test, split = report["test"], report["split"]
    plain = test["variants"]["plain"]
    env = report["environment"]
    lines = [
        "# signdigits model report",
        "",
        f"**{plain['accuracy']:.2%} on the plain photos of {len(split['test_participants'])} "
        f"people never seen in training** ({plain['images']} photos), and on the same people's "
        "photos taken the way people take them:",
        "",
        format_table(test),
        "",
        f"- Split by {split['kind']}: {split['train_images']} train / {split['val_images']} "
        f"validation / {split['test_images']} test photos. The validation people chose the best "
        "epoch and the confidence temperature; the test people were never used for any choice.",
        f"- Classifier: {report['parameters']:,} parameters, {report['model_bytes'] / 1024:.0f} KiB "
        f"(`{report['model_file']}`), best validation epoch {report['history']['best_epoch']}; hand "
        f"localizer `{report['localizer_file']}`, {report['localizer_bytes'] / 1024:.0f} KiB.",
        *([f"- Served as `{report['serving']['file']}` ({report['serving']['bytes'] / 1024:.0f} KiB, "
            f"LiteRT{', int8 weights' if CLASSIFIER.int8_weights else ''}): its probabilities differ "
            "from the Keras model's by at most "
            f"{report['serving']['max_difference']:.1g} on the {report['serving']['inputs']} test crops."]
          if report.get("serving") else []),
        f"- Training took {report['training_seconds'] / 60:.1f} min, with calibration and "
        f"evaluation {report['total_seconds'] / 60:.1f} min, on {env['cpu']} with "
        f"TensorFlow {env['versions']['tensorflow']} ({env['threads']['intra_op']} threads).",
        f"- Command: `{report['config']['command']}` (seed {report['config']['seed']}).",
        "",
        "![reliability diagram](reliability.png)",
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![training curves](training_curves.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict, directory: Path):
    """Write report.json, report.md and the two PNGs as the folder ``directory``.

    They are written into a temporary folder that then takes the old one's place, so an
    interrupted run leaves the previous report whole rather than half overwritten.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    for stale in directory.parent.glob(f".{directory.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (fresh / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        (fresh / "report.md").write_text(_markdown(report))
        _plot_confusion(report["test"]["confusion_matrix"], fresh / "confusion_matrix.png")
        _plot_reliability(report["test"]["reliability"], report["test"]["ece"], fresh / "reliability.png")
        _plot_curves(report["history"], report.get("teacher_history"), fresh / "training_curves.png")
        fresh.chmod(0o755)
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            directory.rename(old)
        fresh.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def read_report(directory: Path) -> dict:
    """The report.json in ``directory`` (raises OSError / ValueError if absent or broken)."""
    return json.loads((Path(directory) / REPORT_JSON).read_text())
