# PlatformIO development platform for the emulated boards (mcu/platform/builder/main.py does the work).
# Contract: no packages to install; the toolchain (arm-none-eabi-gcc) and qemu-system-arm come from the
# system (scripts/setup.sh installs the Debian packages).
from platformio.public import PlatformBase


class SqzqemuPlatform(PlatformBase):
    def is_embedded(self):
        return True
