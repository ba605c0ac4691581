# ruff: noqa: F821, UP031  (an SCons script: `env` comes from Import, %-formatting kept for SCons-style strings)
# PlatformIO pre-script of every environment: the model package, TFLM and the build facts, one mechanism.
# Contract:
#   model package  SQZ_MODEL_DIR or custom_model_dir (default ../build/squeezenet_cifar10/firmware, relative
#                  to mcu/): must hold model_data.h/.cc, model_settings.h, model_op_resolver.h, else the build
#                  stops with "run python -m convert ... first"; model_op_resolver.h is compiled as it is.
#   op table       convert/tflm_ops.py (OPS): the kernel sources the package's ops need (its SQZ_MODEL_OPS; a
#                  package without it predates the table: re-run python -m convert), and SQZ_INT8_ONLY_KERNELS,
#                  defined (application sources) for kernel sets with int8-only kernels (cmsis_nn) unless
#                  custom_int8_kernels = no: the package's RegisterModelOps then registers them (the converter's
#                  models are full int8).
#   TFLM tree      custom_tflm_root, else the tree named by custom_tflm_tree (tflm or esp-tflite-micro) as
#                  convert/tflm_tree.py finds it: its override (TFLM_ROOT, ESP_TFLM_ROOT), else the
#                  tree the set-up made from pinned sources in the cache. It is compiled here
#                  into libtflm.a with the kernels of custom_tflm_kernels: reference, cmsis_nn (the tree's
#                  kernels/cmsis_nn/*.cc replace the reference ones, plus third_party/cmsis_nn) or esp_nn (same
#                  with kernels/esp_nn and the ESP-NN tree named by custom_esp_nn_tree, default esp-nn, found the
#                  same way, override ESP_NN_ROOT). TFLM and ESP-NN are compiled without C++ exceptions and RTTI
#                  whatever the framework's flags (Arduino-ESP32 compiles C++ with -fexceptions, which TFLM's
#                  TF_LITE_STATIC_MEMORY classes, with their private operator delete, do not compile with).
#   ESP-NN         custom_esp_nn = optimized (default) or ansi. optimized defines CONFIG_NN_OPTIMIZED and the
#                  chip's CONFIG_IDF_TARGET_* (from the board's build.mcu), which esp_nn.h needs to pick the chip's
#                  kernels (ESP32-S3: its assembly; ESP32: the generic optimised C); without them it silently
#                  picks the plain C ones. A generated source asserts at compile time that esp_nn.h picked the
#                  variant HELLO reports. custom_esp_nn_assembly = stub (compile checks whose compiler is not
#                  Xtensa's): the chip's .S files are not assembled and each function they define becomes a stub
#                  that traps, listed in $BUILD_DIR/esp_nn_stubs.c, so the link still resolves everything else.
#   optimisation   custom_tflm_optimization (every object of the TFLM tree outside third_party/cmsis_nn:
#                  interpreter, allocator, kernels) and custom_cmsis_nn_optimization (third_party/cmsis_nn, or
#                  nothing for other kernel sets): GCC flags, -O levels and -f options
#                  (e.g. -O2, or -O3 -funroll-loops), put last on each of those objects' command lines, so they win
#                  over build_flags and the -O the platform or framework adds after this script; empty (the
#                  default) keeps the environment's. SQZ_TFLM_OPTIMIZATION / SQZ_CMSIS_NN_OPTIMIZATION, when
#                  set, replace them (experiments.kernel_opt builds its variants so). Other libraries (ESP-NN) and the
#                  application keep the environment's flags. SQZ_BUILD_FLAGS reports both.
#   build facts    sqz_build_info.h (git SHA, flags, kernels, environment) in $BUILD_DIR/generated, rewritten
#                  only when it changes, so TFLM is not recompiled for a new commit. SQZ_KERNELS is the kernel
#                  set compiled: reference, cmsis_nn, or esp_nn/<esp32s3|opt|ansi> (what esp_nn.h selected).
import glob
import os
import re
import subprocess
import sys

Import("env")  # noqa: F821  (SCons)

PROJECT_DIR = env.subst("$PROJECT_DIR")
# The project's Python lookups (stdlib only), so this build and the tests find the same trees and cache.
sys.path.insert(0, os.path.dirname(PROJECT_DIR))
from convert import tflm_ops, tflm_sources, tflm_tree  # noqa: E402
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
    except tflm_sources.TreeError as error:
        fail(str(error))
    origin = tflm_tree.TREES[name].override if os.environ.get(tflm_tree.TREES[name].override) else "cache"
    return origin, str(path)


OPS_DEFINE = re.compile(r'^#define SQZ_MODEL_OPS "([^"]*)"', re.M)  # what convert/codegen.py writes


def package_ops(package):
    """The op names the package's model_op_resolver.h registers (its SQZ_MODEL_OPS), each one in the op table."""
    header = os.path.join(package, "model_op_resolver.h")
    match = OPS_DEFINE.search(open(header).read())
    if not match:
        fail(
            "%s has no SQZ_MODEL_OPS: the package was generated before convert/tflm_ops.py's op table; re-run "
            "python -m convert for it (the command that made it is in its artifact's model.json, key command)" % header
        )
    ops = match.group(1).split()
    unknown = [op for op in ops if op not in tflm_ops.OPS]
    if unknown:
        fail("%s registers %s, which convert/tflm_ops.py does not know: re-run python -m convert" % (header, ", ".join(unknown)))
    return ops


def model_kernel_stems(ops):
    """The kernel files the package's ops need, or None (compile every kernel) for an op whose kernels the op table
    does not list, or custom_tflm_kernel_sources other than model."""
    if option("custom_tflm_kernel_sources", "model") != "model":
        return None
    return tflm_ops.kernel_stems(ops)


def int8_only_kernels(kernels):
    """Defines SQZ_INT8_ONLY_KERNELS for a kernel set with int8-only kernels (custom_int8_kernels = yes, the
    default), so the package's RegisterModelOps registers them and the int16, int4 and float paths of the generic
    kernels are not linked. Returns whether it did."""
    setting = option("custom_int8_kernels", "yes")
    if setting not in ("yes", "no"):
        fail("custom_int8_kernels = %s: yes (the default) or no" % setting)
    if setting == "yes" and kernels in tflm_ops.int8_only_kernel_sets():
        # the application's sources only (engine.cc includes the header): TFLM's command lines, and so its objects
        # in the build cache, stay the same
        env.Append(SRC_BUILD_FLAGS=["-DSQZ_INT8_ONLY_KERNELS"])
        return True
    return False


def kernel_filter(root, kernels, stems):
    """src_filter for the TFLM library: no tests, host-only logging or other kernel sets; with `stems`, only the
    kernels the model's ops need (custom_tflm_kernel_sources = model, the default), which saves most of the
    compile time and changes nothing in the firmware (the linker drops unused kernels anyway)."""
    micro = "tensorflow/lite/micro"
    rules = ["+<tensorflow/>", "-<%s/cortex_m_generic/>" % micro, "-<%s/debug_log.cc>" % micro, "-<%s/debug_log.cpp>" % micro]
    # esp/: esp-tflite-micro's micro_time.cc on esp_timer (the firmware times with port_ticks; one micro_time.cc is enough)
    skipped = ("examples", "tools", "arduino", "testing", "python", "integration_tests", "esp")
    rules += ["-<%s/%s/>" % (micro, folder) for folder in skipped]
    for test_only in ("fake_micro_context", "mock_micro_graph", "test_helpers", "test_helper_custom_ops", "kernels/kernel_runner"):
        rules += ["-<%s/%s.cc>" % (micro, test_only), "-<%s/%s.cpp>" % (micro, test_only)]
    if stems is not None:
        kernel_dir = os.path.join(root, micro, "kernels")
        absent = [s for s in stems if not any(os.path.isfile(os.path.join(kernel_dir, s + ext)) for ext in (".cc", ".cpp"))]
        if absent:
            fail(
                "the model's ops need kernels/%s.cc, which the TFLM tree %s lacks (esp-tflite-micro has no DECODE: "
                "a LUT-compressed package builds only with the tflm tree)" % (".cc, kernels/".join(absent), root)
            )
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


# Appended to the C++ command lines of TFLM and ESP-NN, after the environment's flags (the last of -fexceptions and
# -fno-exceptions wins): what esp-tflite-micro's own component build compiles TFLM with, and STM32duino's defaults.
LIBRARY_CXXFLAGS = ["-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]
# What custom_tflm_optimization / custom_cmsis_nn_optimization accept: flags that change code generation, no more
OPTIMIZATION_FLAG = re.compile(r"^-(O[0-3sgz]?|Ofast|f[a-z0-9][a-z0-9-]*(=[a-z0-9-]+)?)$")
OPTIMIZATION_GROUPS = {"TFLM": ("custom_tflm_optimization", "SQZ_TFLM_OPTIMIZATION"),
                       "CMSIS-NN": ("custom_cmsis_nn_optimization", "SQZ_CMSIS_NN_OPTIMIZATION")}  # fmt: skip


def optimization_flags():
    """{"TFLM": [...], "CMSIS-NN": [...]}: each group's flags, from its environment variable when set, else its
    option; a flag that is not an -O level or -f option stops the build naming the option and what it takes."""
    flags = {}
    for group, (name, variable) in OPTIMIZATION_GROUPS.items():
        origin, value = (variable, os.environ[variable]) if os.environ.get(variable) is not None else (name, option(name, ""))
        flags[group] = value.split()
        bad = [f for f in flags[group] if not OPTIMIZATION_FLAG.match(f)]
        if bad:
            fail("%s = %r: %s is not an -O level or -f option (e.g. -O2, -O3 -funroll-loops; empty keeps the "
                 "environment's flags)" % (origin, value, " ".join(bad)))  # fmt: skip
    return flags


def with_flags(command, variable):
    """`command` (CCCOM or CXXCOM) with $<variable> expanded after every other flag, just before the source."""
    extended = env[command].replace("$SOURCES", "$%s $SOURCES" % variable, 1)
    if extended == env[command]:
        fail("cannot add $%s to %s = %r" % (variable, command, env[command]))
    return extended


def build_library(name, root, src_filter, optimization=lambda path: []):
    """env.BuildLibrary with, on each object, LIBRARY_CXXFLAGS (C++ only) and optimization(source path) last: a
    per-object CCCOM/CXXCOM, which still expands the environment's flags when the command runs (the platform and
    the framework add theirs, -O included, after this pre-script; GCC takes the last -O)."""
    variant = os.path.join("$BUILD_DIR", name)
    cxxcom, cccom = with_flags("CXXCOM", "SQZ_LIBRARY_CXXFLAGS"), with_flags("CCCOM", "SQZ_LIBRARY_CCFLAGS")
    nodes = []
    for node in env.CollectBuildFiles(variant, root, src_filter):
        flags = optimization(node.srcnode().get_abspath())
        if str(node).endswith((".cc", ".cpp")):
            nodes.append(env.Object(node, CXXCOM=cxxcom, SQZ_LIBRARY_CXXFLAGS=LIBRARY_CXXFLAGS + flags))
        elif str(node).endswith(".c") and flags:
            nodes.append(env.Object(node, CCCOM=cccom, SQZ_LIBRARY_CCFLAGS=flags))
        else:
            nodes.append(node)
    return env.BuildLibrary(variant, root, nodes=nodes)


def tflm_optimization(flags):
    """Source path -> the flags of its group: third_party/cmsis_nn is CMSIS-NN, everything else TFLM."""
    cmsis_nn = os.sep + os.path.join("third_party", "cmsis_nn") + os.sep
    return lambda path: flags["CMSIS-NN"] if cmsis_nn in path else flags["TFLM"]


# build.mcu -> the CONFIG_IDF_TARGET_* esp_nn.h reads, and the kernels it then selects with CONFIG_NN_OPTIMIZED
ESP_NN_TARGETS = {"esp32": ("CONFIG_IDF_TARGET_ESP32", "opt"), "esp32s3": ("CONFIG_IDF_TARGET_ESP32S3", "esp32s3")}
ASSEMBLY_GLOBAL = re.compile(r"^\s*\.glob(?:a)?l\s+(\w+)", re.M)


def esp_nn_stubs(sources, folder):
    """esp_nn_stubs.c: a trapping stand-in for each function the chip's assembly sources define (compile checks
    only: custom_esp_nn_assembly = stub); returns the file and the names."""
    names = sorted({n for path in sources for n in ASSEMBLY_GLOBAL.findall(open(path).read())})
    lines = ["// Generated by mcu/scripts/tflm.py (custom_esp_nn_assembly = stub): ESP-NN's Xtensa assembly is not",
             "// assembled by this compiler; each function it defines traps here, so the link resolves everything else."]  # fmt: skip
    lines += ["void %s(void) { __builtin_trap(); }" % n for n in names]
    path = os.path.join(folder, "esp_nn_stubs.c")
    write_if_changed(path, "\n".join(lines) + "\n")
    return path, names


def esp_nn_probe(variant, folder):
    """sqz_esp_nn_probe.cc: fails to compile unless esp_nn.h, with this build's defines, maps esp_nn_conv_s8 to the
    kernels HELLO reports (esp_nn_conv_s8_<variant>)."""
    text = "\n".join([
        "// Generated by mcu/scripts/tflm.py: the ESP-NN kernels esp_nn.h selects are the ones SQZ_KERNELS names.",
        "#include <esp_nn.h>",
        "#define SQZ_NAME_(x) #x",
        "#define SQZ_NAME(x) SQZ_NAME_(x)",
        "constexpr bool sqz_same(const char* a, const char* b) { return *a == *b && (*a == 0 || sqz_same(a + 1, b + 1)); }",
        'static_assert(sqz_same(SQZ_NAME(esp_nn_conv_s8), "esp_nn_conv_s8_%s"),' % variant,
        '              "esp_nn.h selected other ESP-NN kernels than esp_nn_conv_s8_%s (CONFIG_NN_OPTIMIZED, CONFIG_IDF_TARGET_*)");'
        % variant,
        "",
    ])  # fmt: skip
    write_if_changed(os.path.join(folder, "sqz_esp_nn_probe.cc"), text)


def esp_nn(kernels, folder):
    """ESP-NN for custom_tflm_kernels = esp_nn: include paths, the defines esp_nn.h selects kernels by, the library
    and the probe. Returns the variant compiled (esp32s3, opt or ansi), or None for other kernel sets."""
    if kernels != "esp_nn":
        return None
    try:
        root = str(tflm_tree.require_tree(option("custom_esp_nn_tree", "esp-nn")))
    except (tflm_sources.TreeError, KeyError) as error:
        fail("custom_esp_nn_tree: %s" % error)
    chip = env.BoardConfig().get("build.mcu", "")
    mode = option("custom_esp_nn", "optimized")
    assembly = option("custom_esp_nn_assembly", "yes")
    if chip not in ESP_NN_TARGETS or mode not in ("optimized", "ansi") or assembly not in ("yes", "stub"):
        fail(
            "ESP-NN: build.mcu = %s (known: %s), custom_esp_nn = %s (optimized or ansi), custom_esp_nn_assembly = %s (yes or stub)"
            % (chip, ", ".join(ESP_NN_TARGETS), mode, assembly)
        )
    target, variant = ESP_NN_TARGETS[chip]
    defines = ["ESP_NN", (target, 1)] + ([("CONFIG_NN_OPTIMIZED", 1)] if mode == "optimized" else [])
    variant = variant if mode == "optimized" else "ansi"
    env.Append(CPPPATH=[os.path.join(root, "include"), os.path.join(root, "src", "common")], CPPDEFINES=defines)
    src_filter = "+<**/*_ansi.c> +<**/*_opt.c>"
    if variant == "esp32s3":
        src_filter += " +<**/*_esp32s3.c>"
        if assembly == "yes":
            src_filter += " +<**/*_esp32s3.S>"
        else:
            stubs, names = esp_nn_stubs(sorted(glob.glob(os.path.join(root, "src", "*", "*_esp32s3.S"))), folder)
            env.BuildSources(os.path.join("$BUILD_DIR", "esp_nn_stubs"), folder, src_filter="+<esp_nn_stubs.c>")
            print("squeezenet-mcu: ESP-NN assembly not assembled; %d functions stubbed in %s" % (len(names), stubs))
    env.Prepend(LIBS=[build_library("esp_nn", os.path.join(root, "src"), src_filter)])
    esp_nn_probe(variant, folder)
    env.BuildSources(os.path.join("$BUILD_DIR", "esp_nn_probe"), folder, src_filter="+<sqz_esp_nn_probe.cc>")
    return variant


def write_if_changed(path, text):
    if not os.path.isfile(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


def generated_folder():
    folder = os.path.join(env.subst("$BUILD_DIR"), "generated")
    os.makedirs(folder, exist_ok=True)
    return folder


def write_build_info(kernels, origin, root, optimization):
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
    # CCFLAGS are still empty in a pre-script: report what sets them, the board's CPU and FPU, build_flags, and
    # the flags that follow them on the library objects (the last -O is the one GCC uses)
    board = env.BoardConfig()
    cpu = " ".join(["-mcpu=%s" % board.get("build.cpu", "?")] + board.get("build.fpu_flags", "").split())
    flags = "%s %s" % (cpu, " ".join(env.GetProjectOption("build_flags", []) or []))
    libraries = "; ".join("%s %s" % (group, " ".join(f) or "env flags") for group, f in optimization.items())
    values = {
        "SQZ_FIRMWARE_GIT_SHA": sha,
        "SQZ_BUILD_FLAGS": "%s; %s; TFLM from %s %s" % (flags, libraries, origin, root),
        "SQZ_KERNELS": kernels,
        "SQZ_ENV_NAME": env.subst("$PIOENV"),
    }
    text = "// Generated by mcu/scripts/tflm.py for this build.\n" + "".join(
        '#define %s "%s"\n' % (k, v.replace("\\", "/").replace('"', "'")[:200]) for k, v in values.items()
    )
    folder = generated_folder()
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
    variant = esp_nn(kernels, generated_folder())
    compiled = "esp_nn/%s" % variant if variant else kernels
    ops = package_ops(package)
    int8 = int8_only_kernels(kernels)
    tflm_filter = kernel_filter(root, kernels, model_kernel_stems(ops))
    optimization = optimization_flags()
    env.Prepend(LIBS=[build_library("tflm", root, tflm_filter, tflm_optimization(optimization))])
    env.BuildSources(os.path.join("$BUILD_DIR", "tflm_glue"), os.path.join(PROJECT_DIR, "tflm"))
    env.BuildSources(os.path.join("$BUILD_DIR", "model"), package, src_filter="+<model_data.cc>")
    write_build_info(compiled, origin, root, optimization)
    print(
        "squeezenet-mcu: model package %s; TFLM (%s) %s; kernels %s; library flags: %s"
        % (
            package,
            origin,
            root,
            compiled + (" (int8-only registrations)" if int8 else ""),
            "; ".join("%s %s" % (g, " ".join(f) or "default") for g, f in optimization.items()),
        )
    )


main()
