"""python -m bench.pipeline: the main job, end to end on the embedded default (the README's first command).

Stages, each skipped with a reason when what it needs is absent:
  1. model     the committed pretrained CIFAR-10 model, or --train to make it again with its recorded recipe
  2. convert   full int8, the firmware package and its pre-flight checks (build/<name>/)
  3. parity    Keras float vs LiteRT reference kernels vs TFLM host, on the test split (reports/<name>/parity/)
  4. firmware  build mcu/ for the emulated STM32F405 (qemu_stm32f405, CMSIS-NN) when a TFLM tree is found
               (TFLM_ROOT, else the tree scripts/setup.sh made from pinned sources: python -m convert.tflm_tree)
  5. device    flash it to QEMU netduinoplus2 and run the serial benchmark over its UART (reports/<name>/device/);
               without a TFLM tree, the virtual device (TFLM host interpreter behind the same protocol) instead, saying so

Writes reports/<name>/summary.md and summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.firmware.launch import qemu_command
from convert.tflm_tree import HOWTO as TREE_HOWTO
from convert.tflm_tree import find_tree
from model import exit_codes, quiet_tensorflow
from model import metadata as model_metadata
from model.provenance import REPO_ROOT, git_sha, now_utc, write_json

DEFAULT_MODEL = REPO_ROOT / "model" / "pretrained" / "squeezenet_cifar10.keras"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "cifar10"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the Keras model to deploy")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="image folder, 'cifar10' or 'synthetic'")
    parser.add_argument("--train", action="store_true", help="train the model again with the recipe in its metadata first")
    parser.add_argument("--limit", type=int, default=None, help="host parity on N test images, evenly spread (default: all)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports", help="reports go to OUT/<model name>/")
    parser.add_argument("--device-limit", type=int, default=200, help="test images sent to the board (about 1 s each on QEMU)")
    parser.add_argument("--build", type=Path, default=REPO_ROOT / "build", help="the artifact goes to BUILD/<model name>/")
    return parser


class StageError(Exception):
    """A stage cannot go on; the message says why. `exit_code` is its status in model.exit_codes."""

    exit_code = exit_codes.FAILED


class NoRecipe(StageError):
    exit_code = exit_codes.BAD_INPUT


class TrainingFailed(StageError):
    pass


class FirmwareBuildFailed(StageError):
    """The firmware did not build; `output` is PlatformIO's whole output (a caller can tell a model that does not
    fit, the linker's "region ... overflowed", from a broken build)."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


class EndpointFailed(StageError):
    """The process serving the protocol (QEMU, the virtual device) did not start or did not say its URL."""

    exit_code = exit_codes.DEVICE


def stage_train(model_path: Path, data: str) -> dict:
    """Re-run the training recorded in the model's metadata, writing to the same place. A warm-restarted model
    (its recipe has `init_from`) is made by replaying the chain: the first run's recipe, then this one from it."""
    meta = model_metadata.read(model_path)
    if not meta:
        raise NoRecipe(f"{model_metadata.metadata_path(model_path)} is missing: nothing says how to train this model")
    commands = train_recipe(meta["architecture"], meta["recipe"], data, model_path.parent, model_path.stem)
    return {"command": " && ".join(commands)}


def train_recipe(arch: dict, recipe: dict, data: str, out: Path, name: str) -> list[str]:
    """Train `name` into `out` with this architecture and recipe; returns the commands run, in order."""
    from model import train
    from model.cli import architecture_flags, recipe_flags

    commands = []
    argv = ["--data", data, "--out", str(out), "--name", name, *architecture_flags(arch), *recipe_flags(recipe)]
    start = (recipe.get("init_from") or {}).get("recipe")
    if start:
        # The weights it started from were trained first, with the same architecture, into a side folder.
        first = out / f"{name}_init"
        commands += train_recipe(arch, start, data, first, name)
        argv += ["--init-from", str(first / f"{name}.keras")]
    if train.main(argv) != 0:
        raise TrainingFailed(f"training {name} failed (python -m model.train {' '.join(argv)}): its messages are above")
    return [*commands, "python -m model.train " + " ".join(argv)]


def stage_convert(model_path: Path, data: str, build: Path) -> dict:
    from convert.artifact import convert_model

    artifact = convert_model(model_path, data, build, board="netduinoplus2")
    return {
        "artifact": str(build),
        "tflite_bytes": artifact["tflite_bytes"],
        "sha256": artifact["sha256"],
        "arena_bytes": artifact["arena"]["total"],
        "summary": f"{artifact['tflite_bytes']:,} B int8 model, TFLM arena {artifact['arena']['total']:,} B, fits the STM32F405",
    }


def stage_parity(build: Path, data: str, limit: int | None, out: Path) -> dict:
    from bench.parity import check as parity

    argv = ["--artifacts", str(build), "--data", data, "--out", str(out)] + (["--limit", str(limit)] if limit else [])
    status = parity.main(argv)
    report = json.loads((out / "parity.json").read_text()) if (out / "parity.json").is_file() else {}
    engines = report.get("engines", {})
    top1 = {key: engines.get(key, {}).get("top1") for key in ("keras", "litert", "tflm")}
    dataset = report.get("dataset") or {}
    shown = ", ".join(f"{key} {100 * value:.2f}%" for key, value in top1.items() if value is not None)
    return {
        "exit_status": status,
        "verdict": report.get("verdict"),
        "top1": top1,
        "correct": {key: engines.get(key, {}).get("correct") for key in top1},
        "dataset": {k: dataset.get(k) for k in ("name", "split", "images", "split_images", "fingerprint")},
        "report": str(out / "parity.md"),
        "summary": f"{report.get('verdict', 'no report')} on {dataset.get('images') or 0:,} {dataset.get('name')} images; top-1 {shown}",
    }


def tflm_tree() -> Path | None:
    """The TFLM source tree the firmware builds against (convert.tflm_tree's lookup), or None."""
    return find_tree("tflm")


def stage_firmware(build: Path, environment: str = "qemu_stm32f405", build_dir: Path | None = None) -> dict:
    """Build the firmware around the artifact's package; PlatformIO recompiles only what changed. `build_dir` keeps
    this build apart from mcu/.pio/build (a second model's firmware, say), its objects still from the build cache."""
    env = dict(os.environ, SQZ_MODEL_DIR=str((build / "firmware").resolve()))
    build_dir = build_dir or os.environ.get("PLATFORMIO_BUILD_DIR")  # PlatformIO's own override, honoured for the ELF path too
    if build_dir is not None:
        env["PLATFORMIO_BUILD_DIR"] = str(Path(build_dir).resolve())
    command = [str(Path(sys.executable).parent / "pio"), "run", "-d", str(REPO_ROOT / "mcu"), "-e", environment]
    print(f"firmware: building {environment} with PlatformIO ({FIRMWARE_USUAL})", flush=True)
    returncode, output = run_with_heartbeat(command, env, f"firmware: building {environment}")
    if returncode != 0:
        raise FirmwareBuildFailed(f"firmware build failed ({' '.join(command)}):\n{output[-5000:]}", output)
    elf = Path(build_dir or REPO_ROOT / "mcu" / ".pio" / "build").resolve() / environment / "firmware.elf"
    return {"environment": environment, "elf": str(elf), "tflm": str(tflm_tree()), "summary": f"{environment} built: {elf}"}


FIRMWARE_USUAL = (
    "seconds when TFLM's objects are in the build cache; a first build compiles TFLM: about 2.5 min with the reference "
    "kernels, 4.5 min with CMSIS-NN, on 2 cores"
)
HEARTBEAT_S = 30.0  # a long silent step says it is still at work this often


def run_with_heartbeat(command: list[str], env: dict, what: str, period_s: float = HEARTBEAT_S) -> tuple[int, str]:
    """Run `command`, its output collected (returned with the exit status, not shown); every `period_s` print one
    line saying it is still running, for how long, and how many files it compiled so far."""
    import threading

    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    while True:
        try:
            process.wait(timeout=period_s)
            break
        except subprocess.TimeoutExpired:
            compiled = sum(line.startswith("Compiling ") for line in lines)
            print(f"{what}: still running, {time.monotonic() - started:,.0f} s, {compiled:,} files compiled so far", flush=True)
    reader.join(timeout=10)
    return process.returncode, "".join(lines)


@contextlib.contextmanager
def serial_endpoint(command: list[str], timeout_s: float = 60.0):
    """Start a process that serves the protocol (QEMU or the virtual device) and yield the pyserial URL it
    prints as `serial: <url>`; stop it afterwards, whatever happened."""
    from bench.firmware.launch import LaunchError, announced, serial_url

    try:
        with announced(command, serial_url, what="serial URL", timeout_s=timeout_s, cwd=REPO_ROOT) as url:
            yield url
    except LaunchError as error:
        raise EndpointFailed(str(error)) from None


def stage_device(build: Path, data: str, limit: int, out: Path, elf: Path | None) -> dict:
    from bench.on_device.run import exit_status, run_benchmark

    if elf:
        target = "QEMU netduinoplus2 (STM32F405), instruction-count timing"
        command = qemu_command(elf)
        print(
            f"device: starting QEMU netduinoplus2 (a second or two), then {limit:,} images at about 1 s each "
            "(the Keras and TFLM host references run meanwhile)",
            flush=True,
        )
    else:
        target = "virtual device (TFLM host interpreter behind the serial protocol): no TFLM tree for the firmware"
        print(f"no TFLM tree ({TREE_HOWTO}): benchmarking the {target.split(':')[0]}", flush=True)
        command = [sys.executable, "-m", "bench.virtual.device", "--artifacts", str(build)]
    with serial_endpoint(command) as url:
        summary = run_benchmark([url], build, data, limit, 3, elf, out)
    board = summary["boards"][0]
    result = {"target": target, "status": board["status"], "exit_status": exit_status(summary), "report": str(out / "serial.md")}
    if board["status"] == "ok":
        from bench.on_device.report_format import latency_text

        lsb, latency, info = board["host_lsb"], board["latency"], board.get("device") or {}
        result.update(
            images=board["completed"],
            top1=board["accuracy"]["device"]["top1"],
            accuracy=board["accuracy"],
            bit_identical=lsb["bit_identical"],
            max_abs_diff_lsb=lsb["max_abs_diff_lsb"],
            latency=latency,
            board={
                k: info.get(k)
                for k in ("board", "kernels", "clock_hz", "tick_hz", "timer_source", "compiler", "build_flags")
                + ("firmware_git_sha", "arena_bytes", "arena_used_bytes")
            },
            board_name="the emulated STM32F405" if elf else "the virtual device",
            dataset=summary["dataset"],
            memory=summary.get("memory"),
        )
        result["summary"] = (
            f"{target}: {board['completed']:,} images, top-1 {100 * board['accuracy']['device']['top1']:.2f}%, "
            f"{lsb['bit_identical']:,}/{board['completed']:,} bit-identical to the TFLM host, Invoke() {latency_text(latency)}"
        )
    else:
        result["summary"] = f"{target}: {board['status']}: {board.get('error')}"
    return result


def write_summary(folder: Path, summary: dict) -> None:
    from bench.pipeline.summary import render

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "summary.json", summary)
    (folder / "summary.md").write_text(render(summary))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    from convert.errors import ConversionError, exit_code_of

    summary = {"model": args.model.stem, "git_sha": git_sha(), "created": now_utc(), "stages": {}}

    def run(name, function, *stage_args):
        print(f"== {name}", flush=True)
        started = time.monotonic()
        result = function(*stage_args)
        result["seconds"] = round(time.monotonic() - started, 1)
        summary["stages"][name] = result
        return result

    try:
        if args.train:
            run("train", stage_train, args.model, args.data)
        build = args.build / args.model.stem
        run("convert", stage_convert, args.model, args.data, build)
        run("parity", stage_parity, build, args.data, args.limit, args.out / args.model.stem / "parity")
        elf = None
        if tflm_tree():
            elf = Path(run("firmware", stage_firmware, build)["elf"])
        device = run("device", stage_device, build, args.data, args.device_limit, args.out / args.model.stem / "device", elf)
        print(device["summary"])
    except (model_metadata.ModelFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_code_of(error)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted: no summary written", file=sys.stderr)
        return exit_codes.INTERRUPTED
    folder = args.out / args.model.stem
    write_summary(folder, summary)
    print(f"summary: {folder / 'summary.md'}")
    failed = [name for name, stage in summary["stages"].items() if stage.get("exit_status")]
    if failed:
        print(f"failed: {', '.join(failed)} (see their reports)", file=sys.stderr)
        return summary["stages"][failed[0]]["exit_status"]  # the first failed stage's code (a gate, the device)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
