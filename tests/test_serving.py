"""Serving files (signdigits.serving): made from the .h5, checked, current, TensorFlow-free."""

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH
from signdigits.classifier import Classifier, Localizer
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.preprocess import decode
from signdigits.serving import (
    CLASSIFIER,
    LOCALIZER,
    ModelFileError,
    _metadata,
    _with_metadata,
    convert,
    load,
    serving_path,
)  # fmt: skip
from tests.conftest import MODEL_FILE_BUDGET

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
#: The largest difference in localizer output the served model may show against Keras.
PARITY = LOCALIZER.tolerance


@pytest.fixture(scope="module")
def keras_classifier():
    return Classifier(runtime="keras")


@pytest.mark.parametrize("source", [DEFAULT_MODEL_PATH, DEFAULT_LOCALIZER_PATH])
def test_bundled_serving_files_are_current(source):
    """Each bundled .h5 ships with the serving file made from exactly it: none is converted
    at run time."""
    metadata = _metadata(serving_path(source).read_bytes(), source)
    assert metadata["source_sha256"] == hashlib.sha256(Path(source).read_bytes()).hexdigest()
    assert serving_path(source).stat().st_size < MODEL_FILE_BUDGET


def test_bundled_serving_file_carries_the_table_and_calibration():
    from signdigits.model import inspect_model_file

    _, table, info = inspect_model_file(DEFAULT_MODEL_PATH)
    forward, served_table, served_info = load(DEFAULT_MODEL_PATH, CLASSIFIER)
    assert served_table == table and served_info == info and "temperature" in served_info


def test_bundled_models_give_keras_probabilities(classifier, keras_classifier, photo_paths):
    """On real photos: localizer outputs match within 1e-4; calibrated probabilities, the
    classifier's weights served as int8, within its tolerance, the same digit nearly always."""
    decoded = [decode(p) for p in photo_paths[::10]]
    pictures = np.stack([d.locator_input for d in decoded])
    sizes = [d.size for d in decoded]
    for served, reference in zip(classifier.localizer.locate(pictures, sizes),
                                 keras_classifier.localizer.locate(pictures, sizes)):  # fmt: skip
        assert np.abs(served - reference).max() <= PARITY * 100  # boxes in pixels of ~100 px
    inputs = np.stack([r.model_input for r in map(classifier.find_hand, photo_paths[::10])
                       if r.model_input is not None])  # fmt: skip
    served, reference = classifier.probabilities(inputs), keras_classifier.probabilities(inputs)
    assert len(inputs) >= 100 and np.abs(served - reference).max() <= CLASSIFIER.tolerance
    assert np.mean(served.argmax(axis=1) == reference.argmax(axis=1)) >= 0.98


def test_a_model_without_its_serving_file_is_converted_once(make_tiny_model, tmp_path, caplog):
    source = tmp_path / "own.h5"
    source.write_bytes(make_tiny_model(INDEX_TO_DIGIT, hot=3).read_bytes())
    with caplog.at_level(logging.WARNING, logger="signdigits.serving"):
        forward, table, _ = load(source, CLASSIFIER)
    assert "converting it once" in caplog.text and serving_path(source).is_file()
    assert table == INDEX_TO_DIGIT
    assert forward(np.zeros((2, 64, 64, 1))).argmax(axis=1).tolist() == [INDEX_TO_DIGIT[3]] * 2
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="signdigits.serving"):
        load(source, CLASSIFIER)
    assert caplog.text == ""  # the second start uses the file written the first time


def test_a_stale_serving_file_is_replaced(make_tiny_model, tmp_path):
    source = tmp_path / "own.h5"
    source.write_bytes(make_tiny_model(INDEX_TO_DIGIT, hot=3).read_bytes())
    convert(source, CLASSIFIER)
    source.write_bytes(make_tiny_model(INDEX_TO_DIGIT, hot=5).read_bytes())  # retrained
    forward, _, _ = load(source, CLASSIFIER)
    assert forward(np.zeros((1, 64, 64, 1))).argmax() == INDEX_TO_DIGIT[5]


def test_where_the_serving_file_cannot_be_written_it_goes_to_the_cache(
    make_tiny_model, tmp_path, monkeypatch
):  # fmt: skip
    source = tmp_path / "own.h5"
    source.write_bytes(make_tiny_model(INDEX_TO_DIGIT, hot=1).read_bytes())
    serving_path(source).mkdir()  # something else (here a folder) stands where it would go
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    forward, _, _ = load(source, CLASSIFIER)
    assert forward(np.zeros((1, 64, 64, 1))).argmax() == INDEX_TO_DIGIT[1]
    assert len(list((tmp_path / "cache" / "signdigits").glob("*.tflite"))) == 1


def test_a_serving_file_loads_on_its_own():
    forward, table, info = load(serving_path(DEFAULT_MODEL_PATH), CLASSIFIER)
    assert table == INDEX_TO_DIGIT and forward(np.zeros((3, 64, 64, 1))).shape == (3, 10)


def _serving_copy(tmp_path, content: bytes) -> Path:
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    return path


def _changed(change) -> bytes:
    """The bundled classifier's serving file with ``change(model)`` applied to its
    flatbuffer object tree."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(serving_path(DEFAULT_MODEL_PATH).read_bytes()), 0)
    change(model)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _without_our_metadata(model):
    model.metadata = [m for m in model.metadata if m.name != b"signdigits"]


def _with_a_custom_operator(model):
    model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 32  # CUSTOM
    model.operatorCodes[0].customCode = b"Anything"


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda: b"not a model at all", "not a LiteRT model file"),
        (lambda: serving_path(DEFAULT_MODEL_PATH).read_bytes()[:200_000], "damaged|could not be loaded"),
        (lambda: _changed(_without_our_metadata), "no signdigits metadata"),
        (lambda: _changed(_with_a_custom_operator), "custom operator"),
        (lambda: _with_metadata(_changed(_without_our_metadata), {
            **_metadata(serving_path(DEFAULT_MODEL_PATH).read_bytes(), "bundled"),
            "index_to_digit": [1, 1, 2, 3, 4, 5, 6, 7, 8, 9]}), "label table"),
    ],
    ids=["not LiteRT", "truncated", "no metadata", "custom operator", "bad table"],
)  # fmt: skip
def test_a_broken_serving_file_is_refused(tmp_path, content, message):
    with pytest.raises(ModelFileError, match=message):
        load(_serving_copy(tmp_path, content()), CLASSIFIER)


def test_answering_imports_no_tensorflow(photo_paths):
    """The app's and CLI's whole answer path, explanation included, runs without TensorFlow."""
    code = (
        "import sys\nfrom signdigits.classifier import Classifier\n"
        "from signdigits.explain import saliency\n"
        f"c = Classifier()\np = c.predict({str(photo_paths[0])!r})\n"
        f"list(c.predict_many([('a', {str(photo_paths[1])!r})]))\n"
        "saliency(c, c.find_hand(" + repr(str(photo_paths[0])) + ").model_input, p.digit)\n"
        "print(p.digit, sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == ["[]"] and done.stdout.split()[0] == photo_paths[0].parent.name


def test_serving_metadata_is_json(tmp_path):
    assert json.loads(json.dumps(_metadata(serving_path(DEFAULT_LOCALIZER_PATH).read_bytes(), "x")))
    with pytest.raises(ModelFileError, match="holds a localizer, not a classifier"):
        Classifier(DEFAULT_LOCALIZER_PATH)
    assert Localizer(serving_path(DEFAULT_LOCALIZER_PATH)).info == load(DEFAULT_LOCALIZER_PATH, LOCALIZER)[2]


def test_the_environment_may_pick_the_runtime(monkeypatch):
    from signdigits.serving import KerasRuntime, LiteRuntime

    monkeypatch.setenv("SIGNDIGITS_RUNTIME", "keras")
    assert isinstance(load(DEFAULT_MODEL_PATH, CLASSIFIER)[0], KerasRuntime)
    assert isinstance(load(DEFAULT_MODEL_PATH, CLASSIFIER, "litert")[0], LiteRuntime)  # an argument wins
    monkeypatch.setenv("SIGNDIGITS_RUNTIME", "onnx")
    with pytest.raises(ValueError, match="runtime must be one of"):
        load(DEFAULT_MODEL_PATH, CLASSIFIER)


@pytest.mark.parametrize("source", [DEFAULT_MODEL_PATH, DEFAULT_LOCALIZER_PATH])
def test_the_bundled_serving_files_reshape_to_a_fixed_width(source):
    """A Flatten converted as it is becomes SHAPE, STRIDED_SLICE and PACK before a computed
    RESHAPE, which splits the net between XNNPack and TensorFlow Lite's own kernels (the
    localizer's grid is reshaped to a fixed width too; it has no dense layer)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(serving_path(source).read_bytes()), 0)
    used = {max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes}
    operator = schema.BuiltinOperator
    assert operator.CONV_2D in used and (operator.FULLY_CONNECTED in used) == (source == DEFAULT_MODEL_PATH)
    assert not used & {operator.SHAPE, operator.STRIDED_SLICE}
