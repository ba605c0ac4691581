# ruff: noqa: UP031
# SCons build script of the sqzqemu platform: Debian's arm-none-eabi-gcc, bare metal, newlib-nano.
# Contract: builds $PROGPATH (firmware.elf) and firmware.map from the project sources; targets
#   upload  starts qemu-system-arm with the firmware (mcu/tools/qemu_launch.py): UART on a TCP port,
#           printed as socket://127.0.0.1:<port>, -icount shift=0, stopped cleanly by Ctrl-C/SIGTERM;
#   size    arm-none-eabi-size plus the flash/RAM split of mcu/tools/size_report.py.
# Linker script: the board's build.ldscript; with build.memory_ldscript_dir (the bare-metal QEMU boards and the
# compile checks: the shared ports/cortex_m/cortex_m.ld) that folder's board_memory.ld is what the script's INCLUDE
# finds.
# Compile-check boards (check_*.json, a "build.check" object): the real board's framework flags instead of the
# bare-metal defaults (its cflags, cxxflags, ccflags, defines, string_defines, linkflags, libs; less the "unflags"
# this compiler rejects, e.g. Xtensa's -mlongcalls, each listed with its reason under "dropped"), linked with
# ports/cortex_m/cortex_m.ld and platform/ld/board_memory.ld into the chip's flash and RAM (flash_origin, ram_origin,
# upload.maximum_size, upload.maximum_ram_size, stack_size, passed as --defsym); the minimal Arduino API of
# "arduino" (tests/arduino) on the include path and its link stand-ins ("stubs") compiled in; no upload.
import os
import sys

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
project_dir = env.subst("$PROJECT_DIR")
cpu_flags = ["-mcpu=%s" % board.get("build.cpu"), "-mthumb"] + board.get("build.fpu_flags", "").split()
check = board.get("build.check", {})

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-gcc",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="gdb-multiarch",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.text|\.rodata|\.data|\.isr_vector|\.ARM\.exidx|\.model)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    LDSCRIPT_PATH=os.path.join(project_dir, board.get("build.ldscript")),
)
map_flags = ["-Wl,-Map,${BUILD_DIR}/firmware.map", "-Wl,--print-memory-usage"]
# A shared linker script (ports/cortex_m/cortex_m.ld) INCLUDEs the board's board_memory.ld: its folder goes first on
# the -L path, which GNU ld searches for INCLUDE files, so no other board's (or the toolchain's) file is taken.
memory_dir = board.get("build.memory_ldscript_dir", "")
if memory_dir:
    memory_ld = os.path.join(project_dir, memory_dir, "board_memory.ld")
    if not os.path.isfile(memory_ld):
        sys.stderr.write(
            "Error: board %s names memory_ldscript_dir %s, which has no board_memory.ld: add one (MEMORY with FLASH and RAM "
            "and a default STACK_SIZE, as ports/qemu_stm32f405/board_memory.ld)\n" % (env.subst("$BOARD"), memory_dir)
        )
        env.Exit(1)
    env.Prepend(LIBPATH=[os.path.dirname(memory_ld)])
if check:
    dropped = set(check.get("unflags", []))

    def flags(name):
        return [f for f in check.get(name, []) if f not in dropped]

    memory = {
        "SQZ_FLASH_ORIGIN": check["flash_origin"],
        "SQZ_FLASH_SIZE": board.get("upload.maximum_size"),
        "SQZ_RAM_ORIGIN": check["ram_origin"],
        "SQZ_RAM_SIZE": board.get("upload.maximum_ram_size"),
        "STACK_SIZE": check.get("stack_size", 0),
    }
    env.Append(
        ASFLAGS=cpu_flags + ["-x", "assembler-with-cpp"],
        CFLAGS=flags("cflags"),
        CXXFLAGS=flags("cxxflags"),
        CCFLAGS=cpu_flags + flags("ccflags"),
        CPPDEFINES=[("F_CPU", board.get("build.f_cpu"))]
        + [tuple(d) if isinstance(d, list) else d for d in check.get("defines", [])]
        + [(name, env.StringifyMacro(value)) for name, value in check.get("string_defines", {}).items()],
        LINKFLAGS=cpu_flags + check.get("linkflags", []) + ["-Wl,--defsym=%s=%s" % item for item in memory.items()] + map_flags,
        LIBS=check.get("libs", []),
        CPPPATH=[os.path.join(project_dir, check["arduino"])],
    )
    if not check.get("stubs"):
        sys.stderr.write(
            'Error: board %s: build.check needs "stubs", its link stand-ins in %s (e.g. ["stub_serial.cpp", "stub_stm32.cpp"])\n'
            % (env.subst("$BOARD"), check["arduino"])
        )
        env.Exit(1)
    stubs = " ".join("+<%s>" % name for name in check["stubs"])
    env.BuildSources(os.path.join("$BUILD_DIR", "arduino_stub"), os.path.join(project_dir, check["arduino"]), stubs)
else:
    env.Append(
        ASFLAGS=cpu_flags + ["-x", "assembler-with-cpp"],
        CCFLAGS=cpu_flags + ["-ffunction-sections", "-fdata-sections", "-fno-common", "-Wall"],
        CXXFLAGS=["-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", "-fno-use-cxa-atexit"],
        CPPDEFINES=[("F_CPU", board.get("build.f_cpu"))],
        LINKFLAGS=cpu_flags + ["--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"] + map_flags,
        LIBS=["stdc++_nano", "m"],
    )

target_elf = env.BuildProgram()
env.NoCache(target_elf)  # always link: the map file (size report) is a by-product the build cache would not restore
env.SideEffect("${BUILD_DIR}/firmware.map", target_elf)
if not os.path.isfile(env.subst("${BUILD_DIR}/firmware.map")):
    AlwaysBuild(target_elf)  # an ELF without its map (e.g. from an older build): link again
tools = os.path.join(project_dir, "tools")

if check:
    refuse = 'echo "%s is a compile check of %s: upload that environment to the board"; exit 1' % (env.subst("$PIOENV"), check["of"])
    upload = env.Alias("upload", target_elf, env.VerboseAction(refuse, "No upload"))
else:
    upload = env.Alias(
        "upload",
        target_elf,
        env.VerboseAction(
            '"$PYTHONEXE" "%s" --machine %s --elf $SOURCE' % (os.path.join(tools, "qemu_launch.py"), board.get("build.qemu_machine")),
            "Starting QEMU %s" % board.get("build.qemu_machine"),
        ),
    )
AlwaysBuild(upload)

size = env.Alias(
    "size",
    target_elf,
    [
        env.VerboseAction("$SIZETOOL -A -d $SOURCE", "Section sizes"),
        env.VerboseAction(
            '"$PYTHONEXE" "%s" --elf $SOURCE --map ${BUILD_DIR}/firmware.map --ram %d --flash %d'
            % (os.path.join(tools, "size_report.py"), board.get("upload.maximum_ram_size"), board.get("upload.maximum_size")),
            "Flash and RAM split",
        ),
    ],
)
AlwaysBuild(size)
Default([target_elf])
