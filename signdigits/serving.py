"""The models as they serve: LiteRT files beside the Keras ones, and the runtimes that run them.

Training writes each model twice: ``model.h5`` (Keras, the checked source) and
``model.tflite`` (LiteRT), converted from it by TensorFlow's own converter (the
classifier's weights as int8, see :data:`CLASSIFIER`). A serving
file holds a model's whole forward pass (for the classifier: the crop and its mirror
image, and the mean of their log-probabilities in digit order 0..9) and carries the
source's label table and info (the temperature among them) with the SHA-256 of the
``.h5`` it was made from, so a stale one is never used. The app and the CLI answer
through ai-edge-litert's interpreter and never import TensorFlow; a ``.h5`` without a
current serving file (a user's own) is converted once, the only time TensorFlow loads.
A serving file is used only after it was checked: the LiteRT format, built-in operators
only (no custom code), the expected shapes and metadata.
"""

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from signdigits import IMAGE_SIZE, NUM_CLASSES, TRAIN_INSTALL, MissingTrainExtra
from signdigits.atomic import atomic_path
from signdigits.hand_grid import OUTPUTS
from signdigits.labels import validate_table
from signdigits.preprocess import LOCATOR_SIZE
from signdigits.quiet import start_up_notices_dropped

log = logging.getLogger(__name__)

SERVING_SUFFIX = ".tflite"
METADATA_NAME = "signdigits"
FILE_IDENTIFIER = b"TFL3"
#: The most pictures one interpreter call takes: bounds the activation memory (the
#: classifier's first layer holds 1 MB per picture and its mirror image).
RUN_BATCH = 8
RUNTIMES = ("litert", "keras")
RUNTIME_VARIABLE = "SIGNDIGITS_RUNTIME"
RETRAIN = "Train one with `python train_model.py`, or pass another file."


class ModelFileError(ValueError):
    """The model file cannot be used. The message says why and how to fix it."""


@dataclass(frozen=True)
class ModelKind:
    """What a model file must be: its input, its outputs, whether it names digits; how its
    serving file stores the weights, and how far (in output: probabilities, for the
    classifier) it may differ from its Keras model."""

    name: str
    input_shape: tuple[int, ...]
    outputs: int
    needs_table: bool
    int8_weights: bool = False
    tolerance: float = 1e-4


#: The classifier serves with int8 weights (dynamic-range quantization): a photo read in
#: 0.7x the time, its file a quarter the size, probabilities within 0.015 of Keras.
#: The localizer stays float: int8, its likeliest cell moved on some real frames.
CLASSIFIER = ModelKind("classifier", (IMAGE_SIZE, IMAGE_SIZE, 1), NUM_CLASSES, True, int8_weights=True, tolerance=0.03)
LOCALIZER = ModelKind("localizer", (LOCATOR_SIZE, LOCATOR_SIZE, 3), OUTPUTS, False)  # signdigits.hand_grid


def serving_path(source) -> Path:
    """Where the serving file of ``source`` (a ``.h5``) lives: beside it."""
    return Path(source).with_suffix(SERVING_SUFFIX)


def _cache_path(digest: str) -> Path:
    """Where a serving file goes when its model's folder is read-only."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "signdigits" / f"{digest}{SERVING_SUFFIX}"


def calibrated(logs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities (N, 10) -> probabilities at ``temperature`` (a softmax per row)."""
    scaled = np.asarray(logs, np.float64) / temperature
    scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


# --- Reading and checking a serving file (no TensorFlow) ---------------------------------


def _metadata(content: bytes, path) -> dict:
    """The signdigits metadata of a serving file, after checking its format and operators."""
    if content[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{path} is not a LiteRT model file. {RETRAIN}")
    try:
        model = schema.Model.GetRootAs(content, 0)
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            if code.CustomCode() or schema.BuiltinOperator.CUSTOM in (
                code.BuiltinCode(), code.DeprecatedBuiltinCode()
            ):  # fmt: skip
                raise ModelFileError(f"{path} uses a custom operator; only built-in operators are run. {RETRAIN}")
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged flatbuffer: out-of-range offsets, bad JSON, ...
        raise ModelFileError(f"{path} is a damaged LiteRT model file ({exc}). {RETRAIN}") from exc
    raise ModelFileError(f"{path} is not a signdigits serving file (no signdigits metadata). {RETRAIN}")


class LiteRuntime:
    """A serving file in the LiteRT interpreter: inputs (N, *shape) -> outputs (N, k).

    One interpreter serves every thread (app sessions share it), one call at a time.
    """

    def __init__(self, content: bytes, kind: ModelKind, path):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with start_up_notices_dropped():  # the delegate's line, written at allocation
                self._interpreter = Interpreter(model_content=content, num_threads=os.cpu_count() or 1)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{path} could not be loaded ({exc}). {RETRAIN}") from exc
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        shapes = [tuple(d["shape_signature"]) for d in inputs + outputs]
        if shapes != [(-1, *kind.input_shape), (-1, kind.outputs)]:
            raise ModelFileError(
                f"{path} maps {shapes[:1]} to {shapes[1:]}; signdigits needs "
                f"(-1, {', '.join(map(str, kind.input_shape))}) -> (-1, {kind.outputs}). {RETRAIN}"
            )
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self._batch = 1
        self._lock = threading.Lock()

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        if len(chunk) != self._batch:
            self._interpreter.resize_tensor_input(self._input, chunk.shape)
            self._interpreter.allocate_tensors()
            self._batch = len(chunk)
        self._interpreter.set_tensor(self._input, chunk)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        with self._lock:
            return np.concatenate(
                [self._run(inputs[i : i + RUN_BATCH]) for i in range(0, len(inputs), RUN_BATCH)]
            )  # fmt: skip


# --- Making a serving file (TensorFlow, imported here only) ------------------------------


def _fixed_flatten(model):
    """``model`` with each Flatten and Reshape as a reshape to its fixed width. The
    converter turns them into SHAPE, STRIDED_SLICE, PACK and a RESHAPE to a computed shape,
    which XNNPack does not take, so the net ran in two pieces with TensorFlow Lite's own
    kernels between them; a fixed reshape keeps it whole (a batch 1.1x as fast here)."""
    from signdigits.backend import keras

    inputs = keras.Input(model.input_shape[1:], name=model.inputs[0].name)
    x = inputs
    for layer in model.layers[1:]:  # a plain stack (model.SAFE_LAYERS), input first
        if isinstance(layer, keras.layers.Flatten | keras.layers.Reshape):
            x = keras.ops.reshape(x, (-1, *layer.compute_output_shape(x.shape)[1:]))
        else:
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def serving_model(model, kind: ModelKind, table):
    """The Keras model of a serving file: for the classifier, crop and mirror image in one
    pass, their mean log-probability in digit order; the localizer as it is. Both flatten
    to a fixed width (:func:`_fixed_flatten`)."""
    from signdigits.backend import keras
    from signdigits.labels import digit_order

    model = _fixed_flatten(model)
    if kind is not CLASSIFIER:
        return model
    ops = keras.ops
    crops = keras.Input(kind.input_shape, name="crops")
    pairs = ops.reshape(ops.stack([crops, ops.flip(crops, axis=2)], axis=1), (-1, *kind.input_shape))
    probabilities = ops.take(model(pairs), digit_order(table), axis=1)
    logs = ops.reshape(ops.log(ops.maximum(probabilities, 1e-7)), (-1, 2, NUM_CLASSES))
    return keras.Model(crops, ops.mean(logs, axis=1), name=f"{model.name}_serving")


def load_keras(source, kind: ModelKind):
    """The checked Keras model of a ``kind`` file: ``(model, index_to_digit, info)``."""
    from signdigits.model import load_model

    return load_model(source, input_shape=kind.input_shape, outputs=kind.outputs,
                      needs_table=kind.needs_table)  # fmt: skip


class KerasRuntime:
    """The same forward pass through TensorFlow: for conversion checks and the benchmark."""

    def __init__(self, model, kind: ModelKind, table):
        from signdigits.backend import tf

        serving = serving_model(model, kind, table)
        self._forward = tf.function(lambda x: serving(x, training=False), autograph=False).get_concrete_function(
            tf.TensorSpec([None, *kind.input_shape], tf.float32)
        )

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return self._forward(np.asarray(inputs, np.float32)).numpy()


def _with_metadata(content: bytes, metadata: dict) -> bytes:
    """``content`` (a LiteRT model) with ``metadata`` attached as JSON under our name."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def convert(source, kind: ModelKind, target=None) -> Path:
    """Write the serving file of ``source`` (a checked ``.h5``) to ``target`` (default:
    beside it) and return its path."""
    from signdigits.backend import tf

    source = Path(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    model, table, info = load_keras(source, kind)
    with tempfile.TemporaryDirectory() as folder:
        serving_model(model, kind, table).export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if kind.int8_weights:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: weights only
        content = converter.convert()
    metadata = {"kind": kind.name, "index_to_digit": table and list(table), "info": info,
                "source": source.name, "source_sha256": digest}  # fmt: skip
    target = Path(target or serving_path(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".part" + SERVING_SUFFIX) as temporary:
        temporary.write_bytes(_with_metadata(content, metadata))
    return target


def write_serving(source, kind: ModelKind, inputs: np.ndarray) -> dict:
    """Convert ``source`` and check its serving file against the Keras model on ``inputs``
    (pictures of the model's input shape). Raises :class:`ModelFileError` where they
    differ by more than the kind's ``tolerance``."""
    written = convert(source, kind)
    (served, _, info), (reference, _, _) = load(written, kind), load(source, kind, "keras")
    inputs = np.reshape(inputs, (-1, *kind.input_shape))
    outputs = [forward(inputs) for forward in (served, reference)]
    if kind is CLASSIFIER:
        outputs = [calibrated(logs, info.get("temperature", 1.0)) for logs in outputs]
    difference = float(np.abs(outputs[0] - outputs[1]).max())
    if difference > kind.tolerance:
        raise ModelFileError(f"{written} differs from {source} by {difference:.2g} on "
                             f"{len(inputs)} inputs (at most {kind.tolerance:g} allowed)")  # fmt: skip
    return {"file": written.name, "bytes": written.stat().st_size, "inputs": len(inputs),
            "max_difference": difference}  # fmt: skip


# --- Loading ------------------------------------------------------------------------------


def _read_serving(path, kind: ModelKind, digest=None):
    """``(content, table, info)`` of a checked serving file of ``kind``; None where it was
    made from another ``.h5`` than the one with SHA-256 ``digest``."""
    content = Path(path).read_bytes()
    metadata = _metadata(content, path)
    if digest is not None and metadata.get("source_sha256") != digest:
        return None
    if metadata.get("kind") != kind.name:
        raise ModelFileError(f"{path} holds a {metadata.get('kind')}, not a {kind.name}. {RETRAIN}")
    try:
        table = metadata.get("index_to_digit")
        table = validate_table(table, f"{path}'s label table") if table is not None else None
    except ValueError as exc:
        raise ModelFileError(f"{exc} {RETRAIN}") from exc
    if table is None and kind.needs_table:
        raise ModelFileError(f"{path} carries no index-to-digit table. {RETRAIN}")
    return content, table, dict(metadata.get("info") or {})


def _current_serving(source: Path, kind: ModelKind):
    """The checked serving file made from ``source``, converted now if there is none."""
    if not source.is_file():
        raise ModelFileError(f"Model file {source} does not exist. {RETRAIN}")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    for candidate in (serving_path(source), _cache_path(digest)):
        if candidate.is_file() and (found := _read_serving(candidate, kind, digest)):
            return found, candidate
    try:
        import signdigits.backend  # noqa: F401  (converting loads TensorFlow)
    except MissingTrainExtra:
        raise ModelFileError(f"{source} has no current serving file ({serving_path(source).name}), and "
                             f"making one needs TensorFlow and Keras: {TRAIN_INSTALL}") from None  # fmt: skip
    log.warning("%s has no current serving file; converting it once (this loads TensorFlow "
                "and takes a few seconds).", source)  # fmt: skip
    try:
        written = convert(source, kind)
    except OSError:  # a read-only folder: keep it in the user's cache instead
        written = convert(source, kind, _cache_path(digest))
    log.warning("wrote %s; later starts use it directly.", written)
    return _read_serving(written, kind, digest), written


def load(path, kind: ModelKind, runtime: str | None = None):
    """``(forward, index_to_digit, info)`` for the model file ``path``: a ``.h5`` (served
    from its serving file, made once if missing or stale) or a ``.tflite`` on its own.
    ``runtime="keras"`` runs the ``.h5`` through TensorFlow instead (None: what the
    environment variable ``SIGNDIGITS_RUNTIME`` names, else LiteRT). Raises
    :class:`ModelFileError` with a sentence meant for people on any problem."""
    path = Path(path)
    runtime = runtime or os.environ.get(RUNTIME_VARIABLE) or RUNTIMES[0]
    if runtime == "keras":
        try:
            model, table, info = load_keras(path, kind)
        except ImportError:  # MissingTrainExtra, or h5py (which comes with it) imported first
            raise ModelFileError(f"The Keras runtime ({RUNTIME_VARIABLE}=keras) needs TensorFlow and "
                                 f"Keras: {TRAIN_INSTALL}") from None  # fmt: skip
        return KerasRuntime(model, kind, table), table, info
    if runtime != "litert":
        raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    if path.suffix == SERVING_SUFFIX:
        if not path.is_file():
            raise ModelFileError(f"Model file {path} does not exist. {RETRAIN}")
        (content, table, info), served = _read_serving(path, kind), path
    else:
        (content, table, info), served = _current_serving(path, kind)
    return LiteRuntime(content, kind, served), table, info
