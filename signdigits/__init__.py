"""signdigits: read American Sign Language digit photos (0-9) with a small CNN.

The package holds all logic; ``app.py`` (Streamlit) and ``train_model.py`` are thin
front ends. Nothing here imports Streamlit.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASET_DIR = PROJECT_ROOT / "dataset"
DEFAULT_MODEL_PATH = PROJECT_ROOT / "model.h5"
DEFAULT_LOCALIZER_PATH = PROJECT_ROOT / "localizer.h5"
SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "sign-language-digits"

IMAGE_SIZE = 64
NUM_CLASSES = 10


def report_dir_for(model_path) -> Path:
    """The folder where ``train_model.py`` writes the report of ``model_path``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + "_report")
