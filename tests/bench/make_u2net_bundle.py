#!/usr/bin/env python3
"""Writes a segmenter bundle with the architecture and size of the public U²-Net cloth
segmentation model (levindabhi/cloth-segmentation: U²-Net, 4 classes background / upper /
lower / full body, 768 x 768 input, about 44 M parameters), random weights, as TorchScript,
for the garment benchmarks. Random weights are fine: speed does not depend on them.

  /usr/bin/python3 tests/bench/make_u2net_bundle.py OUT_DIR [--size 768]

U²-Net (Qin et al. 2020): nested U-structures (RSU blocks) in a six-stage encoder-decoder,
side outputs fused by a 1 x 1 convolution; written from the paper's description.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from export_clip import sha256  # noqa: E402  (the bundle writers' one checksum helper)


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, dilation=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def up_to(x, like):
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block of height `height`: encoder with poolings, a dilated bottom, decoder."""

    def __init__(self, height, cin, mid, cout):
        super().__init__()
        self.input = ConvBnRelu(cin, cout)
        self.encoder = nn.ModuleList([ConvBnRelu(cout, mid)] + [ConvBnRelu(mid, mid) for _ in range(height - 2)])
        self.bottom = ConvBnRelu(mid, mid, dilation=2)
        self.decoder = nn.ModuleList([ConvBnRelu(2 * mid, mid) for _ in range(height - 2)] + [ConvBnRelu(2 * mid, cout)])

    def forward(self, x):
        hxin = self.input(x)
        skips, h = [], hxin
        for i, conv in enumerate(self.encoder):
            h = conv(h if i == 0 else F.max_pool2d(h, 2, ceil_mode=True))
            skips.append(h)
        h = self.bottom(h)
        for conv, skip in zip(self.decoder, reversed(skips)):
            h = conv(torch.cat([up_to(h, skip), skip], 1))
        return h + hxin


class RSU4F(nn.Module):
    """The dilated RSU of the two deepest stages: no pooling, dilations 1, 2, 4, 8."""

    def __init__(self, cin, mid, cout):
        super().__init__()
        self.input = ConvBnRelu(cin, cout)
        self.e1, self.e2, self.e3 = ConvBnRelu(cout, mid, 1), ConvBnRelu(mid, mid, 2), ConvBnRelu(mid, mid, 4)
        self.bottom = ConvBnRelu(mid, mid, 8)
        self.d3, self.d2, self.d1 = ConvBnRelu(2 * mid, mid, 4), ConvBnRelu(2 * mid, mid, 2), ConvBnRelu(2 * mid, cout, 1)

    def forward(self, x):
        hxin = self.input(x)
        h1 = self.e1(hxin)
        h2 = self.e2(h1)
        h3 = self.e3(h2)
        h4 = self.bottom(h3)
        d3 = self.d3(torch.cat([h4, h3], 1))
        d2 = self.d2(torch.cat([d3, h2], 1))
        return self.d1(torch.cat([d2, h1], 1)) + hxin


class U2Net(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.stages = nn.ModuleList([RSU(7, 3, 32, 64), RSU(6, 64, 32, 128), RSU(5, 128, 64, 256),
                                     RSU(4, 256, 128, 512), RSU4F(512, 256, 512), RSU4F(512, 256, 512)])
        self.decoders = nn.ModuleList([RSU4F(1024, 256, 512), RSU(4, 1024, 128, 256), RSU(5, 512, 64, 128),
                                       RSU(6, 256, 32, 64), RSU(7, 128, 16, 64)])
        self.sides = nn.ModuleList([nn.Conv2d(c, classes, 3, padding=1) for c in (64, 64, 128, 256, 512, 512)])
        self.fuse = nn.Conv2d(6 * classes, classes, 1)

    def forward(self, x):
        encoded, h = [], x
        for i, stage in enumerate(self.stages):
            h = stage(h if i == 0 else F.max_pool2d(h, 2, ceil_mode=True))
            encoded.append(h)
        decoded = [h]
        for decoder, skip in zip(self.decoders, reversed(encoded[:-1])):
            h = decoder(torch.cat([up_to(h, skip), skip], 1))
            decoded.append(h)
        # side outputs, shallowest first, at the input's size
        sides = [up_to(side(d), x) for side, d in zip(self.sides, reversed(decoded))]
        return self.fuse(torch.cat(sides, 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=768)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = U2Net().eval()
    parameters = sum(p.numel() for p in model.parameters())
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "segmenter.pt")
    with torch.no_grad():
        torch.jit.trace(model, torch.randn(2, 3, args.size, args.size)).save(path)
    classes = ["background", "upper", "lower", "full"]
    bundle = {
        "format": "lookbook-bundle", "version": 1, "kind": "segmenter", "name": "u2net-cloth-random",
        "image": {"encoder": "segmenter.pt", "input_size": args.size, "resize": "stretch",
                  "channel_order": "rgb", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "segmenter": {"classes": classes, "slots": {"upper": "top", "lower": "bottom", "full": "dress"}},
        "files": {"segmenter.pt": sha256(path)},
        "parameters": parameters,
    }
    with open(os.path.join(args.out, "bundle.json"), "w") as f:
        json.dump(bundle, f, indent=2)
    print(json.dumps({"parameters": parameters, "input_size": args.size}))


if __name__ == "__main__":
    main()
