"""Shared fixtures: the real dataset from ../shared (skipped when absent) and the bundled model."""

from pathlib import Path

import pytest

from signdigits import DEFAULT_MODEL_PATH

#: The photos beside a checkout of this repository; they are never committed to it.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "sign-language-digits"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared/sign-language-digits, or skip: the photos are never committed to this repo."""
    if not (SHARED_DATA_DIR / "participants.csv").is_file():
        pytest.skip(f"dataset folder {SHARED_DATA_DIR} is absent (tests read it at run time)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def photo_paths(shared_dir) -> list[Path]:
    """Every photo of the shared dataset, in a stable order."""
    return sorted(shared_dir.glob("*/*.JPG"))


@pytest.fixture(scope="session")
def classifier():
    """The bundled model, loaded once for the whole session."""
    from signdigits.classifier import Classifier

    return Classifier(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="session")
def confident_photos(classifier, photo_paths) -> dict[int, Path]:
    """For each digit, one photo the bundled model reads right with confidence >= 0.8."""
    found = {}
    for path in photo_paths:
        digit = int(path.parent.name)
        if digit not in found:
            prediction = classifier.predict(path)
            if prediction.digit == digit and prediction.confidence >= 0.8:
                found[digit] = path
    return found


@pytest.fixture(scope="session")
def make_tiny_model(tmp_path_factory):
    """A factory for tiny model files (built here, never trained) that always answer class
    index ``hot``: ``make_tiny_model(table, hot=0, input_size=64, classes=10, name=...)``."""

    def make(table, hot=0, input_size=64, classes=10, name=None, info=None):
        import keras
        import numpy as np

        from signdigits.model import save_model

        inputs = keras.Input(shape=(input_size, input_size, 1), name="image")
        x = keras.layers.Flatten(name="flatten")(inputs)
        outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(x)
        model = keras.Model(inputs, outputs)
        kernel, bias = model.get_layer("probabilities").get_weights()
        bias = np.zeros_like(bias)
        bias[hot] = 10.0
        model.get_layer("probabilities").set_weights([np.zeros_like(kernel), bias])
        name = name or f"tiny_{''.join(map(str, table))}_{hot}_{input_size}_{classes}.h5"
        return save_model(model, tmp_path_factory.mktemp("models") / name, table, info)

    return make


@pytest.fixture(scope="session")
def polyglot_model(make_tiny_model, tmp_path_factory) -> Path:
    """A file that is both a harmless HDF5 model and, appended, a ``.keras`` zip whose model
    has a layer outside the allow-list; named ``.keras``, so Keras' own loader reads the zip."""
    import keras

    from signdigits.labels import INDEX_TO_DIGIT

    inputs = keras.Input(shape=(64, 64, 1))
    x = keras.layers.GaussianNoise(0.1)(inputs)  # not in signdigits.model.SAFE_LAYERS
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    folder = tmp_path_factory.mktemp("polyglot")
    archive = folder / "hidden.keras"
    keras.Model(inputs, outputs).save(archive)
    path = folder / "model.keras"
    path.write_bytes(make_tiny_model(INDEX_TO_DIGIT).read_bytes() + archive.read_bytes())
    return path
