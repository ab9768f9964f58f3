"""The training report: test metrics, confusion matrix and curves, written beside the model.

Files in ``<model>_report/``: ``report.json`` (everything, machine-readable),
``report.md`` (the summary a person reads), ``confusion_matrix.png`` and
``training_curves.png``. The app's Model page and the accuracy test read these files.
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from signdigits import NUM_CLASSES
from signdigits.labels import digit_order

REPORT_JSON = "report.json"


def evaluate_model(model, x, y, index_to_digit) -> dict:
    """Accuracy, per-digit precision/recall/F1, macro ROC AUC and confusion matrix (digit order)."""
    probs = np.asarray(model(x[..., None].astype(np.float32), training=False))
    probs = probs[:, digit_order(index_to_digit)]
    truth = np.asarray(index_to_digit)[y.argmax(axis=1)]
    predicted = probs.argmax(axis=1)
    digits = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=digits, zero_division=0
    )
    present = np.unique(truth)
    try:
        auc = float(
            roc_auc_score(truth, probs[:, present] / probs[:, present].sum(1, keepdims=True),
                          multi_class="ovr", average="macro", labels=present)
        ) if len(present) > 2 else float(roc_auc_score(truth == present[-1], probs[:, present[-1]]))
    except ValueError:
        auc = float("nan")
    return {
        "images": int(len(truth)),
        "accuracy": float(np.mean(predicted == truth)),
        "errors": int(np.sum(predicted != truth)),
        "macro_roc_auc": auc,
        "per_digit": {
            str(d): {
                "precision": float(precision[d]),
                "recall": float(recall[d]),
                "f1": float(f1[d]),
                "support": int(support[d]),
            }
            for d in digits
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=digits).tolist(),
    }


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
    ax.set_title("Confusion matrix, unseen participants")
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
    lines = [
        "# signdigits model report",
        "",
        f"**Accuracy on {test['images']} images of {len(split['test_participants'])} participants "
        f"never seen in training: {test['accuracy']:.2%}** ({test['errors']} errors); "
        f"macro ROC AUC {test['macro_roc_auc']:.4f}.",
        "",
        f"- Split by {split['kind']}: {split['train_images']} train / {split['val_images']} "
        f"validation / {split['test_images']} test images. The test participants were "
        "never used for any choice.",
        f"- Model: {report['parameters']:,} parameters, {report['model_bytes'] / 1024:.0f} KiB "
        f"(`{report['model_file']}`); best validation epoch {report['history']['best_epoch']}.",
        f"- Training took {report['training_seconds'] / 60:.1f} min "
        f"(TensorFlow {report['versions']['tensorflow']}).",
        f"- Command: `{report['config']['command']}` (seed {report['config']['seed']}).",
        "",
        "| digit | precision | recall | F1 | images |",
        "|---|---|---|---|---|",
    ]
    for digit, row in test["per_digit"].items():
        lines.append(
            f"| {digit} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{row['support']} |"
        )
    lines += ["", "![confusion matrix](confusion_matrix.png)", "", "![training curves](training_curves.png)", ""]
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
