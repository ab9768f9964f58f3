"""The network, and the one place that saves and loads model files.

Loading is defensive: the file must be one plain HDF5 file (nothing appended), its
architecture is read as JSON and refused unless it is a plain stack of known layers (no
Lambda, no custom code) with the expected input and output shapes and, for the digit
model, the index-to-digit table. The model is then built from that checked architecture
and its weights are read from the same open file; Keras never opens the file itself.
"""

import json
import os
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from signdigits import IMAGE_SIZE, NUM_CLASSES
from signdigits.atomic import atomic_path
from signdigits.backend import keras
from signdigits.hand_grid import CHANNELS, GRID
from signdigits.labels import validate_table
from signdigits.preprocess import LOCATOR_SIZE
from signdigits.serving import RETRAIN, ModelFileError

TABLE_ATTR = "signdigits_index_to_digit"
INFO_ATTR = "signdigits_info"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SAFE_LAYERS = {
    "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "BatchNormalization",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "Dropout", "SpatialDropout2D", "Flatten", "Dense", "Activation", "ReLU", "Softmax",
    "Reshape", "Rescaling",
}  # fmt: skip
#: The model classes a file may name, and what builds each from its checked config.
MODEL_CLASSES = {"Functional": keras.Model, "Model": keras.Model, "Sequential": keras.Sequential}


def build_model(
    filters=(32, 64, 128), convs_per_block=1, dropout=0.3, pooled_blocks=1, name="signdigits_cnn"
) -> keras.Model:
    """A convolutional net on 64x64 grayscale input: one block per entry of ``filters``.

    A block is ``convs_per_block`` x (conv 3x3 -> batch norm -> ReLU) and halves the
    resolution: the first ``pooled_blocks`` blocks with a 2x2 max pool, the others with a
    stride of 2 in their last conv (a quarter of the work). Dropout comes before the
    softmax classifier. The shipped model is three blocks of one conv layer, all strided
    (``pooled_blocks=0``: a 3x3 kernel at stride 2 still sees every pixel, at 0.59x the cost
    of a training step with a pooled first block, so ten minutes hold more steps).
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


def build_localizer(filters=(24, 48, 64, 96, 128, 128), name="signdigits_localizer") -> keras.Model:
    """The hand localizer: the whole picture at LOCATOR_SIZE x LOCATOR_SIZE RGB -> a grid of
    cells, each with the probability that a hand's centre lies in it, where in the cell, and
    that hand's width and height (:mod:`signdigits.hand_grid`), flattened.

    Four stride-2 conv blocks bring the picture down to the grid (one cell per 16 pixels);
    two more at the grid's resolution, the second dilated, let each cell see the whole
    picture (a face beside a hand, an arm below it) before a 1x1 conv answers per cell.
    """
    strides = (2, 2, 2, 2, 1, 1)
    dilations = (1, 1, 1, 1, 1, 2)
    inputs = keras.Input(shape=(LOCATOR_SIZE, LOCATOR_SIZE, 3), name="picture")
    x = inputs
    for block, (width, stride, dilation) in enumerate(zip(filters, strides, dilations), start=1):
        x = keras.layers.Conv2D(width, 3, strides=stride, dilation_rate=dilation, padding="same",
                                use_bias=False, name=f"conv{block}")(x)  # fmt: skip
        x = keras.layers.BatchNormalization(name=f"bn{block}")(x)
        x = keras.layers.Activation("relu", name=f"relu{block}")(x)
    # starts where a hand is rare: a probability near 0.1 per cell (CenterNet's prior)
    x = keras.layers.Conv2D(CHANNELS, 1, activation="sigmoid", name="cells",
                            bias_initializer=keras.initializers.Constant(-2.2))(x)  # fmt: skip
    outputs = keras.layers.Reshape((GRID * GRID * CHANNELS,), name="grid")(x)
    return keras.Model(inputs, outputs, name=name)


def save_model(model: keras.Model, path, index_to_digit=None, info: dict | None = None) -> Path:
    """Write ``model`` to ``path`` (HDF5) with the label table (the localizer has none),
    atomically: an interrupted run never leaves a half-written model where a good one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = None if index_to_digit is None else validate_table(index_to_digit)
    with atomic_path(path, suffix=".part.h5") as temporary:
        model.save(temporary, include_optimizer=False)
        with h5py.File(temporary, "r+") as fh:
            if table is not None:
                fh.attrs[TABLE_ATTR] = json.dumps(list(table))
            fh.attrs[INFO_ATTR] = json.dumps(info or {})
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


def _hdf5_data_end(head: bytes) -> int | None:
    """Where a file's HDF5 data ends, read from the superblock in its first bytes ``head``;
    None unless ``head`` starts with the HDF5 signature and a superblock of version 0-3."""
    if not head.startswith(HDF5_SIGNATURE) or len(head) < 16 or head[8] > 3:
        return None
    version = head[8]
    size = head[13] if version < 2 else head[9]  # bytes per address
    base_at = {0: 24, 1: 28}.get(version, 12)  # the end address comes two addresses later
    end_at = base_at + 2 * size
    if size not in (2, 4, 8) or len(head) < end_at + size:
        return None
    base = int.from_bytes(head[base_at : base_at + size], "little")
    return base + int.from_bytes(head[end_at : end_at + size], "little")


@contextmanager
def _open_checked(path: Path):
    """``path`` as one open h5py file, refused unless it is a plain HDF5 file.

    The HDF5 signature must come first and nothing may follow the HDF5 data: a file with
    a ``.keras`` zip appended reads as a harmless HDF5 model here but as the zip to
    ``keras.models.load_model``. All later reads go through the same open file.
    """
    if not path.is_file():
        raise ModelFileError(f"Model file {path} does not exist. {RETRAIN}")
    with open(path, "rb") as raw:
        end, size = _hdf5_data_end(raw.read(64)), os.fstat(raw.fileno()).st_size
        if end is None:
            raise ModelFileError(
                f"{path} is not a readable HDF5 model file (it does not start with the HDF5 "
                f"signature). {RETRAIN}"
            )
        if end < size:
            raise ModelFileError(
                f"{path} has {size - end:,} bytes after its HDF5 data (another file hidden "
                f"behind the model); only plain HDF5 model files are loaded. {RETRAIN}"
            )
        raw.seek(0)
        try:
            fh = h5py.File(raw, "r")
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path} is not a readable HDF5 model file ({exc}). {RETRAIN}") from exc
        with fh:
            yield fh


def _inspect(fh, path: Path, needs_table: bool) -> tuple[dict, tuple[int, ...] | None, dict]:
    """Architecture (checked against :data:`SAFE_LAYERS`), label table and info of ``fh``."""
    try:
        config = json.loads(_attr_text(fh.attrs.get("model_config", "")))
        layers = config["config"]["layers"]
        unsafe = sorted({str(layer.get("class_name")) for layer in layers} - SAFE_LAYERS)
        unsafe += sorted(_foreign_modules(config))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ModelFileError(f"{path} holds no Keras model architecture. {RETRAIN}") from exc
    if unsafe or config.get("class_name") not in MODEL_CLASSES:
        raise ModelFileError(
            f"{path} contains layers that are not allowed ({', '.join(unsafe) or config.get('class_name')}); "
            f"only plain convolutional layers are loaded, never custom code. {RETRAIN}"
        )
    table_text, info_text = fh.attrs.get(TABLE_ATTR), fh.attrs.get(INFO_ATTR)
    if table_text is None and needs_table:
        raise ModelFileError(
            f"{path} carries no index-to-digit table, so its outputs cannot be named. {RETRAIN}"
        )
    try:
        table = None
        if table_text is not None:
            table = validate_table(json.loads(_attr_text(table_text)), source=f"{path}'s label table")
        info = json.loads(_attr_text(info_text)) if info_text is not None else {}
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{exc} {RETRAIN}") from exc
    return config, table, info


def inspect_model_file(path) -> tuple[dict, tuple[int, ...], dict]:
    """Read architecture, label table and info from ``path`` without building anything.

    Raises :class:`ModelFileError` if the file is missing, not plain HDF5, carries layers
    outside :data:`SAFE_LAYERS`, or lacks the label table.
    """
    path = Path(path)
    with _open_checked(path) as fh:
        return _inspect(fh, path, needs_table=True)


def _load_weights(group, model: keras.Model):
    """Set every weight of ``model`` from ``group`` (the ``model_weights`` that Keras' HDF5
    saver writes: per layer, its trainable then its non-trainable weights, by name)."""
    for layer in model.layers:
        variables = layer.trainable_weights + layer.non_trainable_weights
        if not variables:
            continue
        saved = group[layer.name]
        names = [_attr_text(name) for name in saved.attrs.get("weight_names", [])]
        if len(names) != len(variables):
            raise ValueError(f"layer {layer.name} has {len(variables)} weights, the file {len(names)}")
        for variable, name in zip(variables, names):
            variable.assign(np.asarray(saved[name]))


def load_model(
    path, *, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), outputs=NUM_CLASSES, needs_table=True
) -> tuple[keras.Model, tuple[int, ...] | None, dict]:
    """Load a model file safely: ``(model, index_to_digit, info)``.

    Only what was inspected is loaded: the model is built from the checked architecture
    and its weights are read from the same open file; the file never reaches
    ``keras.models.load_model``. The model must map ``(None, *input_shape)`` to
    ``(None, outputs)``. ``needs_table=False`` accepts a file without the label table
    (``index_to_digit`` is then None). Raises :class:`ModelFileError` with a sentence
    meant for people on any problem.
    """
    path = Path(path)
    with _open_checked(path) as fh:
        config, table, info = _inspect(fh, path, needs_table)
        try:
            model = MODEL_CLASSES[config["class_name"]].from_config(config["config"])
            _load_weights(fh["model_weights"], model)
        except Exception as exc:  # truncated weights, mismatched shapes, ...
            raise ModelFileError(
                f"{path} could not be loaded ({type(exc).__name__}: {exc}). {RETRAIN}"
            ) from exc
    expected_in, expected_out = (None, *input_shape), (None, outputs)
    if tuple(model.input_shape) != expected_in or tuple(model.output_shape) != expected_out:
        raise ModelFileError(
            f"{path} maps {model.input_shape} to {model.output_shape}; signdigits needs "
            f"{expected_in} -> {expected_out}. {RETRAIN}"
        )
    return model, table, info
