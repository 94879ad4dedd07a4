"""`geoedge export ...`: the training-side tool chain (see :mod:`export.cli`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from export.cli import register_subcommands

    parser = subparsers.add_parser(
        "export",
        help="train, export to ONNX, quantise, build TensorRT engines, verify accuracy",
        description="Training side: onnx, quantize, fp16, tensorrt, verify, site-gate, train-unet, "
        "train-detector. Each step writes or checks the model's manifest.",
    )
    register_subcommands(parser)
