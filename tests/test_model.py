"""Model files: saved atomically with the label table; loaded only when plain and well-formed.

Every broken or hostile file is refused with ModelFileError and a clear message, and
nothing inside it is executed. All models here are tiny ones built in the test.
"""

import importlib.util
import json
import shutil

import h5py
import numpy as np
import pytest

from signdigits.labels import INDEX_TO_DIGIT
from signdigits.model import (
    INFO_ATTR,
    SAFE_LAYERS,
    TABLE_ATTR,
    ModelFileError,
    build_model,
    inspect_model_file,
    load_model,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:The object being serialized includes a `lambda`"),
]

PERMUTED = (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)


@pytest.fixture(scope="module")
def tiny(make_tiny_model):
    return make_tiny_model(INDEX_TO_DIGIT, hot=2, info={"note": "tiny"})


@pytest.fixture
def tiny_copy(tiny, tmp_path):
    path = tmp_path / "copy.h5"
    shutil.copyfile(tiny, path)
    return path


def refused(path, *fragments):
    """Both entry points refuse ``path``; the message names it and each fragment."""
    for loader in (inspect_model_file, load_model):
        with pytest.raises(ModelFileError) as caught:
            loader(path)
        message = str(caught.value)
        assert str(path) in message
        for fragment in fragments:
            assert fragment in message, message
    return message


# ----------------------------------------------------------------------------- good files


def test_round_trip_keeps_table_and_info(tiny):
    model, table, info = load_model(tiny)
    assert table == INDEX_TO_DIGIT
    assert info == {"note": "tiny"}
    assert tuple(model.input_shape) == (None, 64, 64, 1)
    assert tuple(model.output_shape) == (None, 10)
    probabilities = model(np.zeros((1, 64, 64, 1), np.float32)).numpy()
    assert probabilities.argmax() == 2
    config, table2, info2 = inspect_model_file(tiny)
    assert table2 == table and info2 == info and config["class_name"] == "Functional"


def test_save_is_atomic_and_leaves_no_temporary_files(tiny):
    leftovers = [p.name for p in tiny.parent.iterdir() if ".part" in p.name]
    assert leftovers == []
    with h5py.File(tiny, "r") as fh:
        assert json.loads(fh.attrs[TABLE_ATTR]) == list(INDEX_TO_DIGIT)
        assert json.loads(fh.attrs[INFO_ATTR]) == {"note": "tiny"}


def test_save_refuses_a_bad_table(tmp_path):
    from signdigits.model import save_model

    with pytest.raises(ValueError):
        save_model(build_model(filters=(4,)), tmp_path / "m.h5", [0] * 10)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_build_model_only_uses_safe_layers():
    model = build_model()
    assert {type(layer).__name__ for layer in model.layers} <= SAFE_LAYERS
    assert tuple(model.input_shape) == (None, 64, 64, 1)
    assert tuple(model.output_shape) == (None, 10)


def test_a_file_without_info_still_loads(tiny_copy):
    with h5py.File(tiny_copy, "r+") as fh:
        del fh.attrs[INFO_ATTR]
    assert inspect_model_file(tiny_copy)[2] == {}


# ----------------------------------------------------------------------------- broken files


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.h5", "does not exist", "train_model.py")


def test_directory_instead_of_a_file(tmp_path):
    folder = tmp_path / "model.h5"
    folder.mkdir()
    refused(folder, "does not exist")


@pytest.mark.parametrize("keep", [0, 8, 100, 0.5, 0.9, 0.99])
def test_truncated_file(tiny, tmp_path, keep):
    data = tiny.read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"not a model\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, b"PK\x03\x04" + b"\0" * 100, b"\0" * 4096],
    ids=["text", "png", "zip", "zeros"],
)
def test_not_hdf5(tmp_path, content):
    path = tmp_path / "model.h5"
    path.write_bytes(content)
    refused(path, "not a readable HDF5 model file")


def test_hdf5_without_a_model(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.zeros(3)
    refused(path, "holds no Keras model architecture")


@pytest.mark.parametrize(
    "config_text",
    [
        "{not json",
        "[1, 2, 3]",
        '"just a string"',
        '{"class_name": "Functional", "config": {"layers": [1, 2]}}',
        '{"class_name": "Functional", "config": {"layers": "Dense"}}',
        '{"class_name": "Functional"}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["bad-json", "list", "string", "layers-not-dicts", "layers-string", "no-config", "deep"],
)
def test_garbled_architecture(tiny_copy, config_text):
    with h5py.File(tiny_copy, "r+") as fh:
        fh.attrs["model_config"] = config_text
    with pytest.raises(ModelFileError):
        load_model(tiny_copy)


def test_file_without_label_table(tiny_copy):
    with h5py.File(tiny_copy, "r+") as fh:
        del fh.attrs[TABLE_ATTR]
    refused(tiny_copy, "no index-to-digit table")


@pytest.mark.parametrize("table_text", ["[1, 2]", "not json", "[0,0,0,0,0,0,0,0,0,0]", '{"a": 1}'])
def test_file_with_a_bad_label_table(tiny_copy, table_text):
    with h5py.File(tiny_copy, "r+") as fh:
        fh.attrs[TABLE_ATTR] = table_text
    with pytest.raises(ModelFileError, match="train_model.py"):
        load_model(tiny_copy)


def test_wrong_input_shape(make_tiny_model):
    path = make_tiny_model(INDEX_TO_DIGIT, input_size=32)
    message = refused_by_load(path)
    assert "(None, 32, 32, 1)" in message and "(None, 64, 64, 1)" in message


def test_wrong_number_of_classes(make_tiny_model):
    path = make_tiny_model(INDEX_TO_DIGIT, classes=5)
    assert "(None, 5)" in refused_by_load(path)


def refused_by_load(path) -> str:
    inspect_model_file(path)  # the architecture is plain: only the shapes are wrong
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    return str(caught.value)


def test_a_layer_without_its_saved_weights_is_refused(tiny_copy):
    """Never a model with freshly initialised weights where the file has none."""
    with h5py.File(tiny_copy, "r+") as fh:
        del fh["model_weights/probabilities"].attrs["weight_names"]
    with pytest.raises(ModelFileError, match="could not be loaded"):
        load_model(tiny_copy)


def test_other_shapes_and_no_table_when_asked(make_tiny_model, tmp_path):
    """``input_shape``, ``outputs`` and ``needs_table`` fit models other than the digit model."""
    path = tmp_path / "other.h5"
    shutil.copyfile(make_tiny_model(INDEX_TO_DIGIT, hot=3, input_size=32, classes=5), path)
    with h5py.File(path, "r+") as fh:
        del fh.attrs[TABLE_ATTR]
    model, table, _ = load_model(path, input_shape=(32, 32, 1), outputs=5, needs_table=False)
    assert table is None and model(np.zeros((1, 32, 32, 1), np.float32)).numpy().argmax() == 3
    with pytest.raises(ModelFileError, match="no index-to-digit table"):
        load_model(path, input_shape=(32, 32, 1), outputs=5)
    with pytest.raises(ModelFileError, match=r"\(None, 64, 64, 1\) -> \(None, 10\)"):
        load_model(path, needs_table=False)


def test_weights_that_do_not_fit_the_architecture(tiny_copy):
    with h5py.File(tiny_copy, "r+") as fh:
        config = json.loads(fh.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["units"] = 7
        fh.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ModelFileError, match="could not be loaded"):
        load_model(tiny_copy)


# ----------------------------------------------------------------------------- hostile files


def touching_lambda(marker):
    """A lambda that creates ``marker`` when it runs (no closure; its source is in a file)."""
    module_path = marker.with_name(marker.name + "_module.py")
    module_path.write_text(
        f"touch = lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]\n"
    )
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.touch(0)  # it works...
    assert marker.exists()
    marker.unlink()  # ...so an absent marker later means it never ran
    return module.touch


@pytest.fixture
def lambda_model_file(tmp_path):
    import keras

    from signdigits.model import save_model

    marker = tmp_path / "lambda_ran"
    inputs = keras.Input(shape=(64, 64, 1))
    x = keras.layers.Lambda(touching_lambda(marker), output_shape=(64, 64, 1))(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    path = save_model(keras.Model(inputs, outputs), tmp_path / "lambda.h5", INDEX_TO_DIGIT)
    marker.unlink(missing_ok=True)  # building the model ran it once; loading must not
    return path, marker


def test_lambda_layer_is_refused_and_never_run(lambda_model_file):
    path, marker = lambda_model_file
    refused(path, "Lambda", "not allowed")
    from signdigits.classifier import Classifier

    with pytest.raises(ModelFileError):
        Classifier(path)
    assert not marker.exists()


def test_lambda_disguised_as_an_allowed_layer_is_never_run(lambda_model_file):
    path, marker = lambda_model_file
    with h5py.File(path, "r+") as fh:
        text = fh.attrs["model_config"]
        text = text.decode() if isinstance(text, bytes) else text
        assert '"class_name": "Lambda"' in text
        fh.attrs["model_config"] = text.replace('"class_name": "Lambda"', '"class_name": "Dense"')
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()


def test_lambda_activation_in_an_allowed_layer_is_never_run(tmp_path):
    import keras

    from signdigits.model import save_model

    marker = tmp_path / "activation_ran"
    inputs = keras.Input(shape=(64, 64, 1))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(10, activation=touching_lambda(marker))(x)
    path = save_model(keras.Model(inputs, outputs), tmp_path / "activation.h5", INDEX_TO_DIGIT)
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()


def test_an_hdf5_model_with_a_keras_archive_appended_is_refused(polyglot_model):
    import keras

    # the polyglot is real: by its name, Keras' own loader opens the zip and its layer
    hidden = keras.models.load_model(polyglot_model, compile=False)
    assert "GaussianNoise" in {type(layer).__name__ for layer in hidden.layers}
    refused(polyglot_model, "bytes after its HDF5 data", "only plain HDF5 model files")


@pytest.mark.parametrize("extra", [b"\0", b"PK\x05\x06" + b"\0" * 18])
def test_any_bytes_after_the_hdf5_data_are_refused(tiny, tmp_path, extra):
    path = tmp_path / "model.h5"
    path.write_bytes(tiny.read_bytes() + extra)
    refused(path, f"{len(extra)} bytes after its HDF5 data")


def test_nested_model_is_refused(tmp_path):
    import keras

    from signdigits.model import save_model

    inner = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten()], name="inner")
    inputs = keras.Input(shape=(64, 64, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(inner(inputs))
    path = save_model(keras.Model(inputs, outputs), tmp_path / "nested.h5", INDEX_TO_DIGIT)
    refused(path, "not allowed")
