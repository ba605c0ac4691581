"""The Keras SqueezeNet: architecture, data, training, evaluation."""

import os


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter. Each command's main() calls it before anything imports
    TensorFlow, so that importing a library module never changes the environment."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
