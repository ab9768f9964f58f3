"""signdigits: read American Sign Language digit photos (0-9) with a small CNN.

The package holds all logic; ``app.py`` (Streamlit) and ``train_model.py`` are thin
front ends. Nothing here imports Streamlit.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where ``build-dataset`` writes the arrays and training reads them: ``dataset/`` in the
#: working directory (the project folder you run the commands in).
DATASET_DIR = Path("dataset")
#: Where training and evaluation read the real scenes (webcam frames, photos without a hand):
#: beside the project folder, as ``../shared`` is laid out; never committed.
DEFAULT_SCENES_DIR = Path("../shared/scenes")

IMAGE_SIZE = 64
NUM_CLASSES = 10

#: How to add what training, converting a ``.h5`` and the Keras runtime need (TensorFlow
#: and Keras); the app and the command line serve without them.
TRAIN_INSTALL = 'pip install -r requirements-train.txt (or: pip install "signdigits[train]")'


class MissingTrainExtra(ImportError):
    """TensorFlow or Keras is not installed. The message says what needs it and how to add it."""


def bundled_file(name: str) -> Path:
    """A file shipped with signdigits (``model.h5``): inside the installed package, or at
    the top of a source checkout, where the package folder sits."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_file() else PACKAGE_DIR.parent / name


DEFAULT_MODEL_PATH = bundled_file("model.h5")
DEFAULT_LOCALIZER_PATH = bundled_file("localizer.h5")


def report_dir_for(model_path) -> Path:
    """The folder where ``train_model.py`` writes the report of ``model_path``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + "_report")
