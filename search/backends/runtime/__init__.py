"""What the local backends share to run a model, none of it a backend: the ONNX export cache and ONNX Runtime
sessions (`onnx_export`), OpenVINO static int8 (`openvino_int8`, calibrated on ``calibration_pairs.json``) and
how cross-encoders read pairs (`pairs`). Imports no backend.
"""
