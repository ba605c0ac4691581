# ruff: noqa: F821, UP031  (an SCons script: `env` comes from Import, %-formatting kept for SCons-style strings)
# PlatformIO pre-script of every environment: the model package, TFLM and the build facts, one mechanism.
# Contract:
#   model package  SQZ_MODEL_DIR or custom_model_dir (default ../build/squeezenet_cifar10/firmware, relative
#                  to mcu/): must hold model_data.h/.cc, model_settings.h, model_op_resolver.h, else the build
#                  stops with "run python -m convert ... first".
#   TFLM tree      custom_tflm_root, else the tree named by custom_tflm_tree (tflm or esp-tflite-micro) as
#                  convert/tflm_tree.py finds it: its override (TFLM_ROOT, ESP_TFLM_ROOT), else the
#                  tree the set-up made from pinned sources in the cache. It is compiled here
#                  into libtflm.a with the kernels of custom_tflm_kernels: reference, cmsis_nn (the tree's
#                  kernels/cmsis_nn/*.cc replace the reference ones, plus third_party/cmsis_nn) or esp_nn (same
#                  with kernels/esp_nn and the esp-nn library of custom_esp_nn_lib). The lib_deps copies are
#                  never compiled by PlatformIO's library finder (platformio.ini lists them in lib_ignore), only here.
#   build facts    sqz_build_info.h (git SHA, flags, kernels, environment) in $BUILD_DIR/generated, rewritten
#                  only when it changes, so TFLM is not recompiled for a new commit.
import glob
import os
import re
import subprocess
import sys

Import("env")  # noqa: F821  (SCons)

PROJECT_DIR = env.subst("$PROJECT_DIR")
# The project's Python lookups (stdlib only), so this build and the tests find the same trees and cache.
sys.path.insert(0, os.path.dirname(PROJECT_DIR))
from convert import tflm_tree  # noqa: E402
from model.cache import cache_dir  # noqa: E402

MODEL_FILES = ("model_data.h", "model_data.cc", "model_settings.h", "model_op_resolver.h")


def option(name, default=None):
    return env.GetProjectOption(name, default)


def fail(message):
    sys.stderr.write("\nmcu/scripts/tflm.py: %s\n\n" % message)
    env.Exit(1)


def model_dir():
    path = os.environ.get("SQZ_MODEL_DIR") or option("custom_model_dir", "../build/squeezenet_cifar10/firmware")
    path = os.path.abspath(os.path.join(PROJECT_DIR, path))
    missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        fail(
            "no firmware model package in %s (missing %s):\n"
            "run python -m convert --model model/pretrained/squeezenet_cifar10.keras --data ../shared/datasets/cifar10 "
            "--out build/squeezenet_cifar10 first, or point custom_model_dir / SQZ_MODEL_DIR at a package." % (path, ", ".join(missing))
        )
    return path


def tflm_root():
    """The tree to compile: custom_tflm_root when the environment sets one, else convert.tflm_tree's lookup of
    the tree named by custom_tflm_tree (tflm, the default, or esp-tflite-micro): its override variable (TFLM_ROOT,
    ESP_TFLM_ROOT), else the tree the set-up made in the cache."""
    configured = option("custom_tflm_root")
    if configured:
        path = os.path.abspath(os.path.join(PROJECT_DIR, configured))
        if not os.path.isdir(os.path.join(path, tflm_tree.TFLM_MARKER)):
            fail("custom_tflm_root=%s is not a TFLM tree (no %s in it)" % (path, tflm_tree.TFLM_MARKER))
        return "custom_tflm_root", path
    name = option("custom_tflm_tree", "tflm")
    try:
        path = tflm_tree.require_tree(name)
    except tflm_tree.TreeError as error:
        fail(str(error))
    origin = tflm_tree.TREES[name].override if os.environ.get(tflm_tree.TREES[name].override) else "cache"
    return origin, str(path)


# Kernel files behind each MicroMutableOpResolver method (stems in tensorflow/lite/micro/kernels/).
KERNEL_FILES = {
    "AddConv2D": ["conv", "conv_common"], "AddDepthwiseConv2D": ["depthwise_conv", "depthwise_conv_common"],
    "AddFullyConnected": ["fully_connected", "fully_connected_common"], "AddAdd": ["add", "add_common"],
    "AddMul": ["mul", "mul_common"], "AddMaxPool2D": ["pooling", "pooling_common"], "AddAveragePool2D": ["pooling", "pooling_common"],
    "AddSoftmax": ["softmax", "softmax_common"], "AddConcatenation": ["concatenation"], "AddMean": ["reduce", "reduce_common"],
    "AddReshape": ["reshape", "reshape_common"], "AddQuantize": ["quantize", "quantize_common"],
    "AddDequantize": ["dequantize", "dequantize_common"], "AddPad": ["pad"], "AddRelu": ["activations", "activations_common"],
    "AddRelu6": ["activations", "activations_common"], "AddLogistic": ["logistic", "logistic_common"],
    # DECODE (LUT-compressed weights, python -m convert.compress); decode_state.cc references every decoder type
    "AddDecode": ["decode", "decode_state", "decode_state_lut", "decode_state_huffman", "decode_state_prune"],
}  # fmt: skip
ALWAYS_KERNEL_FILES = ["kernel_util", "micro_tensor_utils"]


def model_kernel_stems(package):
    """The kernel files the package's op resolver needs, or None (compile every kernel) for an op not in KERNEL_FILES."""
    if option("custom_tflm_kernel_sources", "model") != "model":
        return None
    methods = set(re.findall(r"\.(Add\w+)\(", open(os.path.join(package, "model_op_resolver.h")).read()))
    if not methods or not methods <= set(KERNEL_FILES):
        return None
    return sorted({stem for m in methods for stem in KERNEL_FILES[m]} | set(ALWAYS_KERNEL_FILES))


def kernel_filter(root, kernels, stems):
    """src_filter for the TFLM library: no tests, host-only logging or other kernel sets; with `stems`, only the
    kernels the model's ops need (custom_tflm_kernel_sources = model, the default), which saves most of the
    compile time and changes nothing in the firmware (the linker drops unused kernels anyway)."""
    micro = "tensorflow/lite/micro"
    rules = ["+<tensorflow/>", "-<%s/cortex_m_generic/>" % micro, "-<%s/debug_log.cc>" % micro, "-<%s/debug_log.cpp>" % micro]
    rules += ["-<%s/%s/>" % (micro, folder) for folder in ("examples", "tools", "arduino", "testing", "python", "integration_tests")]
    for test_only in ("fake_micro_context", "mock_micro_graph", "test_helpers", "test_helper_custom_ops", "kernels/kernel_runner"):
        rules += ["-<%s/%s.cc>" % (micro, test_only), "-<%s/%s.cpp>" % (micro, test_only)]
    if stems is not None:
        rules.append("-<%s/kernels/>" % micro)
        rules += ["+<%s/kernels/%s.%s>" % (micro, stem, ext) for stem in stems for ext in ("cc", "cpp")]
    for folder in glob.glob(os.path.join(root, micro, "kernels", "*", "")):
        rules.append("-<%s/kernels/%s/>" % (micro, os.path.basename(os.path.dirname(folder))))
    if kernels != "reference":
        optimized = os.path.join(root, micro, "kernels", kernels)
        sources = [p for p in os.listdir(optimized) if p.endswith((".cc", ".cpp"))] if os.path.isdir(optimized) else []
        if not sources:
            fail("custom_tflm_kernels = %s but %s holds no kernels" % (kernels, optimized))
        for name in sources:
            if stems is None or os.path.splitext(name)[0] in stems:
                rules += ["+<%s/kernels/%s/%s>" % (micro, kernels, name), "-<%s/kernels/%s>" % (micro, name)]
    if kernels == "cmsis_nn":
        rules.append("+<third_party/cmsis_nn/Source/>")
    return rules


def tflm_paths(root, kernels):
    paths = [root] + [os.path.join(root, "third_party", p) for p in ("flatbuffers/include", "gemmlowp", "ruy", "kissfft")]
    if kernels == "cmsis_nn":
        paths += [os.path.join(root, "third_party", p) for p in ("cmsis_nn", "cmsis_nn/Include", "cmsis/CMSIS/Core/Include")]
    return paths


def esp_nn(kernels):
    if kernels != "esp_nn":
        return
    root = os.path.join(env.subst("$PROJECT_LIBDEPS_DIR"), env.subst("$PIOENV"), option("custom_esp_nn_lib", "esp-nn"))
    if not os.path.isdir(root):
        fail("custom_tflm_kernels = esp_nn needs the esp-nn library at %s (lib_deps)" % root)
    chip_sources = "+<**/*_esp32s3.S> +<**/*_esp32s3.c>" if "esp32s3" in env.BoardConfig().get("build.mcu", "") else ""
    env.Append(CPPPATH=[os.path.join(root, "include"), os.path.join(root, "src", "common")], CPPDEFINES=["ESP_NN"])
    env.Prepend(
        LIBS=[
            env.BuildLibrary(
                os.path.join("$BUILD_DIR", "esp_nn"), os.path.join(root, "src"), src_filter="+<**/*_ansi.c> +<**/*_opt.c> " + chip_sources
            )
        ]
    )


INT8_VARIANTS = {
    "AddConv2D": "CONV_2D", "AddDepthwiseConv2D": "DEPTHWISE_CONV_2D", "AddFullyConnected": "FULLY_CONNECTED",
    "AddAdd": "ADD", "AddMul": "MUL", "AddMaxPool2D": "MAX_POOL_2D", "AddAveragePool2D": "AVERAGE_POOL_2D",
    "AddSoftmax": "SOFTMAX", "AddPad": "PAD", "AddTranspose": "TRANSPOSE", "AddBatchMatMul": "BATCH_MATMUL",
    "AddMaximum": "MAXIMUM", "AddMinimum": "MINIMUM", "AddTransposeConv": "TRANSPOSE_CONV", "AddSvdf": "SVDF",
}  # fmt: skip


def write_op_registration(package, folder):
    """sqz_model_ops.h: RegisterFirmwareOps, the package's RegisterModelOps with TFLM's int8-only kernel variants
    (custom_int8_kernels = yes, the default: the converter's models are full int8), so the int16, int4 and
    float paths of the generic kernels are not linked. Any line it does not recognise is kept as it is."""
    text = open(os.path.join(package, "model_op_resolver.h")).read()
    body = re.search(r"RegisterModelOps\(ModelOpResolver& (\w+)\)\s*\{(.*?)\n\}", text, re.S)
    int8 = option("custom_int8_kernels", "yes") == "yes" and body is not None
    lines = ["// Generated by mcu/scripts/tflm.py from the model package's model_op_resolver.h.", "#pragma once",
             '#include "model_op_resolver.h"', "", "inline TfLiteStatus RegisterFirmwareOps(ModelOpResolver& resolver) {"]  # fmt: skip
    if int8:
        name, statements = body.group(1), body.group(2)

        def int8_variant(match):
            method = match.group(1)
            if method not in INT8_VARIANTS:
                return match.group(0)
            return "%s.%s(tflite::Register_%s_INT8())" % (name, method, INT8_VARIANTS[method])

        lines.append("  // int8-only kernel variants where TFLM has them")
        lines += [re.sub(re.escape(name) + r"\.(\w+)\(\)", int8_variant, line) for line in statements.strip("\n").splitlines()]
        if name != "resolver":
            lines.insert(len(lines) - len(statements.strip("\n").splitlines()), "  ModelOpResolver& %s = resolver;" % name)
    else:
        lines += ["  return RegisterModelOps(resolver);"]
    lines += ["}", ""]
    write_if_changed(os.path.join(folder, "sqz_model_ops.h"), "\n".join(lines))


def write_if_changed(path, text):
    if not os.path.isfile(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


def write_build_info(kernels, origin, root):
    try:
        sha = (
            subprocess.check_output(["git", "-C", PROJECT_DIR, "rev-parse", "--short=12", "HEAD"], stderr=subprocess.DEVNULL)
            .decode()
            .strip()
        )
        dirty = subprocess.call(["git", "-C", PROJECT_DIR, "diff", "--quiet", "HEAD", "--", "."], stderr=subprocess.DEVNULL) != 0
        sha += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        sha = "unknown"
    # CCFLAGS are still empty in a pre-script: report what sets them, the board's CPU and build_flags
    cpu = env.BoardConfig().get("build.cpu", "?")
    flags = "-mcpu=%s %s" % (cpu, " ".join(env.GetProjectOption("build_flags", []) or []))
    values = {
        "SQZ_FIRMWARE_GIT_SHA": sha,
        "SQZ_BUILD_FLAGS": "%s; TFLM from %s %s" % (flags, origin, root),
        "SQZ_KERNELS": kernels,
        "SQZ_ENV_NAME": env.subst("$PIOENV"),
    }
    text = "// Generated by mcu/scripts/tflm.py for this build.\n" + "".join(
        '#define %s "%s"\n' % (k, v.replace("\\", "/").replace('"', "'")[:200]) for k, v in values.items()
    )
    folder = os.path.join(env.subst("$BUILD_DIR"), "generated")
    os.makedirs(folder, exist_ok=True)
    write_if_changed(os.path.join(folder, "sqz_build_info.h"), text)
    env.Append(CPPPATH=[folder], CPPDEFINES=["SQZ_HAVE_BUILD_INFO"])
    return folder


def use_build_cache():
    """Objects are cached outside the clone, in the project cache, so a fresh clone (CI) does not compile TFLM again:
    TFLM's command lines name only the tree and flags, the same in every clone. PLATFORMIO_BUILD_CACHE_DIR wins."""
    if not env.subst("$BUILD_CACHE_DIR"):
        folder = os.path.join(str(cache_dir()), "pio-build-cache")
        os.makedirs(folder, exist_ok=True)
        env.CacheDir(folder)


def main():
    use_build_cache()
    package = model_dir()
    kernels = option("custom_tflm_kernels", "reference")
    origin, root = tflm_root()
    # One environment for all: SCons expands flags when it runs a command, so the objects made here get the
    # CPU and optimisation flags the platform and build_flags add after this pre-script.
    env.Append(CPPPATH=tflm_paths(root, kernels) + [package], CPPDEFINES=["TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON"])
    if kernels == "cmsis_nn":
        env.Append(CPPDEFINES=["CMSIS_NN"])  # the kernel headers declare the optimised registrations
    esp_nn(kernels)
    tflm_filter = kernel_filter(root, kernels, model_kernel_stems(package))
    env.Prepend(LIBS=[env.BuildLibrary(os.path.join("$BUILD_DIR", "tflm"), root, src_filter=tflm_filter)])
    env.BuildSources(os.path.join("$BUILD_DIR", "tflm_glue"), os.path.join(PROJECT_DIR, "tflm"))
    env.BuildSources(os.path.join("$BUILD_DIR", "model"), package, src_filter="+<model_data.cc>")
    write_op_registration(package, write_build_info(kernels, origin, root))
    print("squeezenet-mcu: model package %s; TFLM (%s) %s; kernels %s" % (package, origin, root, kernels))


main()
