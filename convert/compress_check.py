"""The lossless check of `python -m convert.compress`, run before anything is written: the original and the
compressed model on the same images in the TFLM host interpreter must give bit-identical outputs, and every
tensor DECODE expands must equal the original tensor, element for element.

The DECODE formats are lossless, so any difference is a bug in an encoder or in the DECODE kernel; it raises
ConversionError and the compressed model is thrown away.
"""

from __future__ import annotations

RANDOM_DATA = "random"  # --data random: seeded noise instead of a dataset's test images


def require_host_decoder(methods) -> None:
    """The lossless check runs the compressed model in the TFLM host interpreter; say so plainly if this
    tflite-micro wheel's DECODE does not know a format (the check must then run on the emulated board)."""
    from convert import tflm_host
    from convert.decode_formats.host_decoder import host_decodes
    from convert.errors import ConversionError

    if not tflm_host.available():
        raise ConversionError("the lossless check needs the TFLM host interpreter (pip install tflite-micro; Linux x86_64)")
    missing = [m for m in methods if m != "lut" and not host_decodes(m)]
    if missing:
        raise ConversionError(
            f"this tflite-micro wheel's DECODE does not decode the {', '.join(missing)} format, so the lossless check cannot run on "
            "the host; nothing written. Use --method lut, or a wheel whose DECODE has it (TFLM's decode_state_prune.cc / "
            "decode_state_huffman.cc), and check a board build with python -m experiments.compressed_firmware"
        )


def lossless_check(
    original: bytes, compressed: bytes, plans: list, source: dict, data: str | None, count: int, method: str, planned: bytes
):
    """(the model.json record of the check, its preflight.Check): the outputs on `count` images of `data`
    against `original`'s, and the decoded tensors on the first of them against `planned`'s, the model the
    plans index into (`original`, or its split layers: `convert.conv_split`). Raises BadInputError (no such
    images) or ConversionError."""
    from convert import preflight
    from model.preprocessing import quantize_int8

    images, image_source = images_for_check(source, data, count)
    identical = check_identical(original, compressed, images, source["input"]) | {"data": image_source}
    first = quantize_int8(images[:1], source["input"]["scale"], source["input"]["zero_point"])
    identical["decoded_tensors"] = check_decoded_tensors(planned, compressed, plans, first)
    check = preflight.Check(
        "lut_lossless" if method == "lut" else "decode_lossless",
        True,
        f"{identical['images']} images of {image_source['source']}: outputs bit-identical; "
        f"{identical['decoded_tensors']['tensors']} decoded tensors equal to the originals",
    )
    return identical, check


def images_for_check(artifact: dict, data: str | None, count: int) -> tuple:
    """(uint8 images, description): the first `count` test images of `data` (default: the dataset the
    artifact was calibrated on), or seeded noise for 'random'. Lossless means equal on any input; real
    images give realistic activations."""
    import numpy as np

    from convert.errors import BadInputError

    shape = artifact["input"]["shape"][1:]
    if data == RANDOM_DATA:
        images = np.random.default_rng(0).integers(0, 256, size=(count, *shape), dtype=np.uint8)
        return images, {"source": "random", "seed": 0, "images": count}
    source = data or artifact["calibration"]["dataset"]["source"]
    from model.data import DatasetError, load_dataset

    try:
        dataset = load_dataset(str(source), progress=False)
    except DatasetError as error:
        raise BadInputError(f"check images: {error}; pass --data DIR (or --data {RANDOM_DATA})") from error
    if list(dataset.test.images.shape[1:]) != list(shape):
        raise BadInputError(f"check images: {dataset.name} has {dataset.test.images.shape[1:]} images, the model takes {shape}")
    images = dataset.test.images[:count]
    return images, {"source": dataset.name, "fingerprint": dataset.fingerprint, "split": "test", "images": len(images)}


def check_decoded_tensors(original: bytes, compressed: bytes, plans: list, image) -> dict:
    """Every compressed tensor as the TFLM host's DECODE expands it (kept with kPreserveAllTensors while the
    model runs on one `image`, int8) against the original tensor, element for element. Raises ConversionError."""
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    from convert import tflm_host
    from convert.decode_formats.plan import decoded_tensors
    from convert.errors import ConversionError

    where = decoded_tensors(compressed, plans)
    if not where:
        raise ConversionError("no DECODE output found for the compressed tensors: the compressed model is not what was planned")
    try:
        kept = tflm_host.invoke_preserving(compressed, image, tensors=sorted(where.values()))
    except tflm_host.TflmError as error:
        message = f"the TFLM host interpreter could not run the compressed model to check its decoded tensors ({error})"
        raise ConversionError(message) from error
    graph = model_editor.read(original).subgraphs[0]
    bad = []
    for index, decoded in where.items():
        source = np.ascontiguousarray(np.asarray(graph.tensors[index].array))
        got = np.ascontiguousarray(np.asarray(kept[decoded][0]))
        if got.nbytes != source.nbytes or not np.array_equal(got.view(np.uint8).reshape(-1), source.view(np.uint8).reshape(-1)):
            bad.append(graph.tensors[index].name)
    if bad:
        message = f"TFLM's DECODE expands {len(bad)} tensor(s) to other values than the original's ({bad[:3]})"
        raise ConversionError(message + ": an encoder bug; nothing written")
    return {"tensors": len(where), "bit_identical": True}


def check_identical(original: bytes, compressed: bytes, images, io: dict) -> dict:
    """Run both models on `images` in the TFLM host interpreter; raise ConversionError unless every output
    byte agrees. Returns the outputs' summary."""
    import numpy as np

    from convert import tflm_host
    from convert.errors import ConversionError
    from model.preprocessing import quantize_int8

    inputs = quantize_int8(images, io["scale"], io["zero_point"])
    try:
        expected = tflm_host.invoke(original, inputs)
        got = tflm_host.invoke(compressed, inputs)
    except tflm_host.TflmError as error:
        raise ConversionError(f"the TFLM host interpreter could not run the models for the lossless check ({error})") from error
    if expected.shape != got.shape or not np.array_equal(expected, got):
        rows = np.flatnonzero((expected != got).reshape(len(inputs), -1).any(axis=1)) if expected.shape == got.shape else []
        raise ConversionError(
            f"the compressed model's outputs differ from the original's on {len(rows)} of {len(inputs)} images (first: {list(rows[:5])}); "
            "the DECODE formats are lossless, so this is a bug in the compressor or the DECODE kernel: do not use this model"
        )
    return {"images": int(len(inputs)), "bit_identical": True, "engine": tflm_host.MEASURED_BY}
