"""Shared fixtures: the real dataset from ../shared (skipped when absent) and the bundled model."""

import functools
import os
from pathlib import Path

# Before any test module loads TensorFlow: pylibsrtp's srtp_init() (under the Live page's
# streamlit-webrtc, which the app tests run) crashes the process when TensorFlow came first.
import pylibsrtp  # noqa: F401
import pytest

from signdigits import DEFAULT_MODEL_PATH

#: Seed of the synthetic photos and of the tests' training runs: SIGNDIGITS_TEST_SEED=1 runs
#: the suite on other draws, to show that no assertion rests on one run's luck.
TEST_SEED = int(os.environ.get("SIGNDIGITS_TEST_SEED", "0"))
#: The photos beside a checkout of this repository; they are never committed to it.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "sign-language-digits"
#: The budget for each bundled model file, Keras and LiteRT alike (#26): under 4 MB.
MODEL_FILE_BUDGET = 4 * 1024 * 1024


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
def built_dataset(shared_dir, tmp_path_factory) -> Path:
    """A folder with the arrays ``build-dataset`` makes of ../shared (x, y, participants, photos)."""
    from signdigits.data import build_dataset, save_dataset

    folder = tmp_path_factory.mktemp("built_dataset")
    save_dataset(build_dataset(shared_dir, log=lambda message: None), folder)
    return folder


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
    index ``hot``: ``make_tiny_model(table, hot=0, input_size=64, classes=10, name=...)``.
    Each distinct file is made once per session, so its serving file is converted once."""

    made = {}

    def make(table, hot=0, input_size=64, classes=10, name=None, info=None):
        key = (tuple(table), hot, input_size, classes, name, repr(info))
        if key not in made:
            made[key] = build(table, hot, input_size, classes, name, info)
        return made[key]

    def build(table, hot, input_size, classes, name, info):
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


@pytest.fixture(scope="session")
def drawn_hand():
    """A 100x100 'photo' and its true hand mask: a palm with three fingers, the forearm
    down to the bottom edge, in skin colour before a light wall."""
    import numpy as np

    truth = np.zeros((100, 100), bool)
    truth[45:100, 35:65] = True  # palm and forearm
    for left in (35, 47, 59):
        truth[15:45, left : left + 6] = True  # fingers
    photo = np.empty((100, 100, 3), np.uint8)
    photo[:] = (225, 225, 220)
    photo[truth] = (200, 150, 120)
    noise = np.random.default_rng(0).normal(0, 2, photo.shape)
    return np.clip(photo + noise, 0, 255).astype(np.uint8), truth


@pytest.fixture(scope="session")
def make_tiny_localizer(tmp_path_factory):
    """A factory for tiny localizer files (built here, never trained) that always answer
    ``box`` (shares of the picture) with hand probability ``score``, each made once."""

    @functools.cache  # box is a tuple: hashable
    def make(box=(0.0, 0.0, 1.0, 1.0), score=1.0, name=None):
        import keras
        import numpy as np

        from signdigits.hand_grid import OUTPUTS, grid_outputs
        from signdigits.model import save_model
        from signdigits.preprocess import LOCATOR_SIZE

        inputs = keras.Input(shape=(LOCATOR_SIZE, LOCATOR_SIZE, 3), name="picture")
        x = keras.layers.Flatten(name="flatten")(inputs)
        outputs = keras.layers.Dense(OUTPUTS, activation="sigmoid", name="grid")(x)
        model = keras.Model(inputs, outputs)
        kernel, _ = model.get_layer("grid").get_weights()
        wanted = np.clip(grid_outputs(box, score), 1e-6, 1 - 1e-6)
        bias = np.log(wanted / (1 - wanted))  # the sigmoid's inverse
        model.get_layer("grid").set_weights([np.zeros_like(kernel), bias])
        name = name or f"tiny_localizer_{'_'.join(map(str, box))}_{score}.h5"
        return save_model(model, tmp_path_factory.mktemp("localizers") / name)

    return make


def synthetic_photo(digit, rng):
    """A 100x100 'photo' of a skin-coloured shape on a light wall; the shape is the digit
    (0 a bar, 1 a post, 2 a cross): signs anyone can tell apart in a few training steps."""
    import numpy as np

    photo = np.empty((100, 100, 3), np.float32)
    photo[:] = rng.uniform(205, 240) + rng.normal(0, 2, (100, 100, 1))
    cx, cy = rng.integers(40, 60, 2)
    long, short = rng.integers(30, 40), rng.integers(8, 12)
    skin = np.asarray([200, 150, 120]) + rng.normal(0, 8, 3)
    if digit in (0, 2):
        photo[cy - short : cy + short, cx - long : cx + long] = skin  # a bar
    if digit in (1, 2):
        photo[cy - long : cy + long, cx - short : cx + short] = skin  # a post
    return np.clip(photo, 0, 255).astype(np.uint8)


SYNTHETIC_PEOPLE, SYNTHETIC_DIGITS, SYNTHETIC_TAKES = 8, (0, 1, 2), 3
#: Procedural backgrounds in a tiny training run's bank (a full run makes 1,500).
TINY_BANK = 60


def tiny_data_args(paths) -> dict:
    """A training config's data fields for the ``tiny_arrays`` paths."""
    return {"x_path": str(paths["x"]), "y_path": str(paths["y"]), "participants_path": str(paths["participants"]),
            "scenes_dir": str(paths["scenes"]), "backgrounds": TINY_BANK}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_arrays(tmp_path_factory) -> dict:
    """Synthetic photos of 8 people x 3 signs x 3 takes, saved as build-dataset saves them."""
    import numpy as np

    from signdigits.labels import digit_to_index
    from signdigits.preprocess import preprocess

    folder = tmp_path_factory.mktemp("tiny_dataset")
    rng = np.random.default_rng(TEST_SEED)
    rows = [(p, d) for p in range(SYNTHETIC_PEOPLE) for d in SYNTHETIC_DIGITS for _ in range(SYNTHETIC_TAKES)]
    photos = np.stack([synthetic_photo(d, rng) for _, d in rows])
    arrays = {
        "x": np.stack([preprocess(photo) for photo in photos]),
        "y": np.eye(10, dtype=np.float32)[[digit_to_index(d) for _, d in rows]],
        "participants": np.asarray([p + 100 for p, _ in rows], np.int64),
        "photos": photos,
    }
    paths = {}
    for name, array in arrays.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], array)
    paths["scenes"] = tiny_scenes(folder / "scenes", rng)
    return paths


def tiny_scenes(folder, rng):
    """A ``scenes`` folder laid out as ../shared/scenes: a few webcam frames of one session
    on each side of the split (a skin-coloured hand boxed on a wall), and one photo without
    a hand in each of 41 Caltech-like categories."""
    import numpy as np
    from PIL import Image

    frames = folder / "webcam-hands" / "frames"
    frames.mkdir(parents=True)
    rows = ["file,split,fingers_open,x0,y0,x1,y1"]
    for session in ("2", "996", "3"):  # training, validation, test (signdigits.real_scenes)
        for take in range(4):
            picture = np.full((60, 80, 3), rng.uniform(120, 220, 3), np.float32) + rng.normal(0, 4, (60, 80, 3))
            x0, y0 = int(rng.integers(5, 50)), int(rng.integers(5, 25))
            picture[y0 : y0 + 30, x0 : x0 + 20] = (200, 150, 120)
            name = f"{session}_pic{take:05d}.jpg"
            Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(frames / name)
            rows.append(f"{name},train,5,{x0},{y0},{x0 + 20},{y0 + 30}")
    (folder / "webcam-hands" / "boxes.csv").write_text("\n".join(rows) + "\n")
    for category in ["Faces", *(f"thing{i:02d}" for i in range(40))]:
        (folder / "caltech101" / category).mkdir(parents=True)
        picture = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(picture).save(folder / "caltech101" / category / "image_0001.jpg")
    return folder
