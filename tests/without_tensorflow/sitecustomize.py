"""Python started with this folder on ``PYTHONPATH`` behaves as if TensorFlow, Keras and
h5py were not installed, as after ``pip install -r requirements.txt``: importing any of
them raises ModuleNotFoundError. The tests run the app and the command line this way."""

import sys

MISSING = ("tensorflow", "keras", "tf_keras", "h5py")


class _NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled)
