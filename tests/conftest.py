"""Shared fixtures: the real dataset from ../shared (skipped when absent) and the bundled model."""

from pathlib import Path

import pytest

from signdigits import DEFAULT_MODEL_PATH, SHARED_DATA_DIR


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
