"""What a model costs to run, as metrics beside its accuracy: parameters, the size of the
saved file, and floating-point operations per image (a multiply-add counts two, a bias add
one: TensorFlow's profiler convention, the one papers and model zoos quote as 2 × MACs).
Latencies are machine-dependent and stay out of the committed metrics (see export.json)."""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf


def count_flops(model, size: int) -> int:
    """Floating-point operations of one (size, size, 3) image through `model` in inference
    mode, counted by TensorFlow's profiler on the frozen graph."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )
    from tensorflow.python.profiler import model_analyzer, option_builder

    function = tf.function(lambda pixels: model(pixels, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, size, size, 3), tf.float32))
    _, graph_def = convert_variables_to_constants_v2_as_graph(concrete)
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    quiet = logging.getLogger("tensorflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the profiler warns that it is a TF1 API
    try:
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(graph_def, name="")
            return int(model_analyzer.profile(graph, options=options).total_float_ops)
    finally:
        quiet.setLevel(level)


def model_cost(model, path: Path, size: int) -> dict[str, int]:
    """Parameters, saved-file bytes and FLOPs per image of a saved model."""
    return {
        "parameters": int(model.count_params()),
        "model_bytes": Path(path).stat().st_size,
        "flops_per_image": count_flops(model, size),
    }
