"""The machine a model is compiled for and runs on, described once for both sides: the chip (mesh, tiles, arrays,
converters, clocks, energy per event, faulty tiles, presets) in ``chip``, and the on-chip network (XY routes, hop
distances, link loads, where the I/O port attaches) in ``network``. The passes, the compiler and the runtime all
read these; this package imports nothing above ``cimc.ir``."""
