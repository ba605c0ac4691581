"""Building and launching firmware: QEMU and process launch (`launch`), the mcu/tools helpers loaded by path (`mcu_tools`)."""
