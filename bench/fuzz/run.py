"""python -m bench.fuzz: coverage-guided fuzzing of the serial protocol, each target for a time budget.

    python -m bench.fuzz --target all --seconds 600            # the recorded runs (docs/BENCHMARKS.md, "Fuzzing")
    python -m bench.fuzz --target c_session --seconds 30       # one target

Targets (each starts from its committed corpus, tests/fuzz_corpus/<target>/, which tests/test_fuzz_corpus.py replays):
- `c_session`: the firmware's protocol core (mcu/src/protocol/*.c) built for the host with clang's libFuzzer under
  ASan and UBSan, harness mcu/test/fuzz/fuzz_session.c (it also checks the one-reply-per-frame contract);
- `py_frame`, `py_device`: the Python frame parser and the client's reply handling (bench/fuzz/targets.py),
  with atheris (libFuzzer for Python).
Prints, per target: executions, coverage (libFuzzer's `cov`: edges, or Python branches for atheris; `ft`: features),
corpus size and findings (crash/leak/timeout/oom inputs, written to <work>/<target>/findings/). New interesting inputs
go to <work>/<target>/corpus/, never into the committed corpus: copy a finding there by hand, with its fix.
Exit status: 0 no findings, 1 findings, 2 a fuzzer could not be built or started (the message says what to install).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz_corpus"
PROTOCOL_SOURCES = sorted((ROOT / "mcu" / "src" / "protocol").glob("*.c"))
C_HARNESS = ROOT / "mcu" / "test" / "fuzz" / "fuzz_session.c"
REPLAY_MAIN = ROOT / "mcu" / "test" / "fuzz" / "replay_main.c"
TARGETS = ("c_session", "py_frame", "py_device")
FINDING_PREFIXES = ("crash-", "leak-", "timeout-", "oom-")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", f"-I{ROOT / 'mcu/src/protocol'}"]
MAX_LEN = 4096  # bytes per input: a few full frames (the largest request frame is ~290 bytes)
UNIT_TIMEOUT_S = 10  # one input running longer is a hang (a finding)
STATUS_LINE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


class FuzzError(RuntimeError):
    """A fuzzer could not be built or started; the message names what to install."""


@dataclass
class Result:
    target: str
    seconds: int
    executions: int = 0
    coverage: int = 0  # libFuzzer's cov
    features: int = 0  # libFuzzer's ft
    corpus: int = 0
    findings: list[str] = field(default_factory=list)
    exit_status: int = 0


def build_c_fuzzer(out: Path) -> Path:
    """The libFuzzer binary of the protocol core; needs clang with its sanitizer and fuzzer runtimes."""
    clang = shutil.which("clang")
    if clang is None:
        raise FuzzError("c_session needs clang with libFuzzer: apt-get install clang libclang-rt-14-dev (scripts/setup.sh does)")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [clang, *CFLAGS, "-fsanitize=fuzzer", *SANITIZE, *map(str, PROTOCOL_SOURCES), str(C_HARNESS), "-o", str(out)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode:
        raise FuzzError(
            f"building the c_session fuzzer failed (is libclang-rt-14-dev installed?):\n{' '.join(command)}\n{built.stderr[-2000:]}"
        )
    return out


def build_c_replayer(out: Path, compiler: str) -> Path:
    """The same harness without libFuzzer (replay_main.c), for replaying the corpus with gcc or clang."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [compiler, *CFLAGS, *SANITIZE, *map(str, PROTOCOL_SOURCES), str(C_HARNESS), str(REPLAY_MAIN), "-o", str(out)]
    subprocess.run(command, check=True)
    return out


def fuzzer_command(target: str, work: Path) -> list[str]:
    if target == "c_session":
        return [str(build_c_fuzzer(work / "fuzz_session"))]
    try:
        import atheris  # noqa: F401
    except ImportError as error:
        raise FuzzError(f"{target} needs atheris: pip install -r requirements.txt (Linux x86-64 wheels)") from error
    return [sys.executable, "-m", "bench.fuzz.targets", target]


def parse_output(text: str, result: Result) -> None:
    for line in text.splitlines():
        if status := STATUS_LINE.match(line):
            result.coverage, result.features, result.corpus = (int(g) for g in status.groups()[1:])
        elif executed := EXECUTED.search(line):
            result.executions = int(executed.group(1))


def run_target(target: str, seconds: int, work: Path, *, quiet: bool = False) -> Result:
    """Fuzz `target` for `seconds` from its committed corpus; new inputs and findings go under `work/target`."""
    if target not in TARGETS:
        raise FuzzError(f"unknown target {target!r}: choose from {', '.join(TARGETS)} or all")
    folder = work / target
    corpus, findings = folder / "corpus", folder / "findings"
    for path in (corpus, findings):
        path.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / target
    options = [
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN}",
        f"-timeout={UNIT_TIMEOUT_S}",
        "-print_final_stats=1",
        f"-artifact_prefix={findings}/",
    ]
    command = [*fuzzer_command(target, folder), *options, str(corpus), *([str(seeds)] if seeds.is_dir() else [])]
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    try:
        process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env})
    except OSError as error:
        raise FuzzError(f"could not start {command[0]}: {error}") from error
    result = Result(target, seconds, exit_status=process.returncode)
    parse_output(process.stderr, result)
    result.findings = sorted(str(p) for p in findings.iterdir() if p.name.startswith(FINDING_PREFIXES))
    (folder / "fuzzer.log").write_text(process.stderr)
    if result.executions == 0 and not result.findings:
        raise FuzzError(f"{target}: the fuzzer ran nothing (exit status {process.returncode}); see {folder / 'fuzzer.log'}")
    if not quiet:
        print(summary_line(result), flush=True)
    return result


def summary_line(r: Result) -> str:
    found = f"{len(r.findings)} finding(s): {', '.join(r.findings)}" if r.findings else "no findings"
    return f"{r.target}: {r.executions:,} executions in {r.seconds} s, cov {r.coverage}, ft {r.features}, corpus {r.corpus}, {found}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz",
        description="Coverage-guided fuzzing of the protocol core (C, libFuzzer + ASan/UBSan) and its Python side (atheris).",
        epilog="Exit status: 0 no findings, 1 findings, 2 a fuzzer could not be built or started.",
    )
    parser.add_argument("--target", default="all", choices=[*TARGETS, "all"], help="what to fuzz (default: %(default)s)")
    parser.add_argument("--seconds", type=int, default=600, help="time budget per target (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "fuzz", help="new corpus, findings, logs (default: build/fuzz)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.seconds < 1:
        print("--seconds must be at least 1", file=sys.stderr)
        return 2
    targets = TARGETS if args.target == "all" else (args.target,)
    results = []
    try:
        for target in targets:  # one at a time: each fuzzer uses one core
            results.append(run_target(target, args.seconds, args.work))
    except FuzzError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
