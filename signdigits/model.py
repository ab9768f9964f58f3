"""The network, and the one place that saves and loads model files.

Loading is defensive: before Keras sees a file we read its architecture as JSON and
refuse anything but a plain stack of known layers (no Lambda, no custom code), the
wrong input or output shape, or a file without the index-to-digit table. Keras then
loads it with ``safe_mode=True`` and ``compile=False``.
"""

import json
import os
import tempfile
from pathlib import Path

import h5py

from signdigits import IMAGE_SIZE, NUM_CLASSES
from signdigits.labels import validate_table
from signdigits.preprocess import LOCATOR_SIZE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402  (after the log-level setting)

LOCATOR_OUTPUTS = 5  # x0, y0, x1, y1, hand probability
TABLE_ATTR = "signdigits_index_to_digit"
INFO_ATTR = "signdigits_info"
SAFE_LAYERS = {
    "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "Dropout", "SpatialDropout2D", "Flatten", "Dense", "Activation", "ReLU", "Softmax",
    "Reshape", "Rescaling",
}  # fmt: skip


class ModelFileError(ValueError):
    """The model file cannot be used. The message says why and how to fix it."""


def build_model(
    filters=(32, 64, 128), convs_per_block=1, dropout=0.3, pooled_blocks=1, name="signdigits_cnn"
) -> keras.Model:
    """A convolutional net on 64x64 grayscale input: one block per entry of ``filters``.

    A block is ``convs_per_block`` x (conv 3x3 -> batch norm -> ReLU) and halves the
    resolution: the first ``pooled_blocks`` blocks with a 2x2 max pool, the others with a
    stride of 2 in their last conv (a quarter of the work). Dropout comes before the
    softmax classifier. The shipped model is three blocks of one conv layer, the first
    pooled so that it sees every pixel; training distils it from a six-conv-layer teacher.
    """
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = inputs
    for block, width in enumerate(filters, start=1):
        pooled = block <= pooled_blocks
        for conv in range(1, convs_per_block + 1):
            suffix = f"{block}" if convs_per_block == 1 else f"{block}_{conv}"
            stride = 1 if pooled or conv < convs_per_block else 2
            x = keras.layers.Conv2D(
                width, 3, strides=stride, padding="same", use_bias=False, name=f"conv{suffix}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"bn{suffix}")(x)
            x = keras.layers.Activation("relu", name=f"relu{suffix}")(x)
        if pooled:
            x = keras.layers.MaxPooling2D(name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def build_localizer(filters=(24, 32, 48, 64, 96), name="signdigits_localizer") -> keras.Model:
    """The hand localizer: 96x96 RGB -> the hand's box ``x0, y0, x1, y1`` (shares of the
    picture) and the probability that there is a hand at all, five sigmoid outputs.

    Five stride-2 conv blocks (96 -> 3 pixels) keep where things are; a dense layer
    reads the box off the last 3x3 map.
    """
    inputs = keras.Input(shape=(LOCATOR_SIZE, LOCATOR_SIZE, 3), name="picture")
    x = inputs
    for block, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(
            width, 3, strides=2, padding="same", use_bias=False, name=f"conv{block}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"bn{block}")(x)
        x = keras.layers.Activation("relu", name=f"relu{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(LOCATOR_OUTPUTS, activation="sigmoid", name="box_and_score")(x)
    return keras.Model(inputs, outputs, name=name)


def save_model(model: keras.Model, path, index_to_digit=None, info: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (HDF5) with the label table, atomically.

    The file is written under a temporary name in the same folder and renamed into
    place, so an interrupted run never leaves a half-written model where a good one was.
    Temporary files a killed earlier run left behind are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = None if index_to_digit is None else validate_table(index_to_digit)
    for stale in path.parent.glob(f".{path.stem}.*.tmp.h5"):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.h5", dir=path.parent)
    os.close(fd)
    os.chmod(tmp_name, 0o644)
    try:
        model.save(tmp_name, include_optimizer=False)
        with h5py.File(tmp_name, "r+") as fh:
            if table is not None:
                fh.attrs[TABLE_ATTR] = json.dumps(list(table))
            fh.attrs[INFO_ATTR] = json.dumps(info or {})
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _attr_text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _foreign_modules(node) -> set[str]:
    """Modules outside Keras that a config refers to (custom activations, initializers...)."""
    found = set()
    if isinstance(node, dict):
        module = node.get("module")
        if module is not None and not str(module).split(".")[0] == "keras":
            found.add(f"module {module}")
        for value in node.values():
            found |= _foreign_modules(value)
    elif isinstance(node, list):
        for value in node:
            found |= _foreign_modules(value)
    return found


def inspect_model_file(path, needs_table=True) -> tuple[dict, tuple[int, ...] | None, dict]:
    """Read architecture, label table and info from ``path`` without building anything.

    Raises :class:`ModelFileError` if the file is missing, not HDF5, carries layers
    outside :data:`SAFE_LAYERS`, or lacks the label table.
    """
    path = Path(path)
    retrain = "Train one with `python train_model.py`, or pass another file."
    if not path.is_file():
        raise ModelFileError(f"Model file {path} does not exist. {retrain}")
    try:
        with h5py.File(path, "r") as fh:
            config_text = _attr_text(fh.attrs.get("model_config", ""))
            table_text = fh.attrs.get(TABLE_ATTR)
            info_text = fh.attrs.get(INFO_ATTR)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a readable HDF5 model file ({exc}). {retrain}") from exc
    try:
        config = json.loads(config_text)
        layers = config["config"]["layers"]
        unsafe = sorted({str(layer.get("class_name")) for layer in layers} - SAFE_LAYERS)
        unsafe += sorted(_foreign_modules(config))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ModelFileError(f"{path} holds no Keras model architecture. {retrain}") from exc
    if unsafe or config.get("class_name") not in ("Functional", "Sequential", "Model"):
        raise ModelFileError(
            f"{path} contains layers that are not allowed ({', '.join(unsafe) or config.get('class_name')}); "
            f"only plain convolutional layers are loaded, never custom code. {retrain}"
        )
    if table_text is None and needs_table:
        raise ModelFileError(
            f"{path} carries no index-to-digit table, so its outputs cannot be named. {retrain}"
        )
    try:
        table = None if table_text is None else validate_table(
            json.loads(_attr_text(table_text)), source=f"{path}'s label table"
        )
        info = json.loads(_attr_text(info_text)) if info_text is not None else {}
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{exc} {retrain}") from exc
    return config, table, info


def load_model(
    path, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), outputs=NUM_CLASSES, needs_table=True
) -> tuple[keras.Model, tuple[int, ...] | None, dict]:
    """Load a model file safely: ``(model, index_to_digit, info)``.

    The model must map ``input_shape`` to ``outputs`` values (the classifier's by
    default); ``needs_table=False`` accepts a file without the label table (the
    localizer). Raises :class:`ModelFileError` with a sentence meant for people.
    """
    _, table, info = inspect_model_file(path, needs_table)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # truncated weights, mismatched shapes, ...
        raise ModelFileError(
            f"{path} could not be loaded ({type(exc).__name__}: {exc}). "
            "Train one with `python train_model.py`, or pass another file."
        ) from exc
    expected_in = (None, *input_shape)
    if tuple(model.input_shape) != expected_in or tuple(model.output_shape) != (None, outputs):
        raise ModelFileError(
            f"{path} maps {model.input_shape} to {model.output_shape}; signdigits needs "
            f"{expected_in} -> (None, {outputs}). Train one with `python train_model.py`."
        )
    return model, table, info
