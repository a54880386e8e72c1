"""On-device runs (method.md §7): ONNX export of dense and DANCE, host ONNX Runtime timing,
the device runner, the Jetson Nano and Snapdragon drivers, log parsers, devices.csv."""
