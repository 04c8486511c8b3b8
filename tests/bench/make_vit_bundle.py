#!/usr/bin/env python3
"""Writes a ViT-B/32-sized CLIP image tower with random weights (12 layers, width 768,
12 heads, patch 32, 224 px, projection to 512, L2 norm) as TorchScript in a lookbook bundle,
for the inference benchmarks. Random weights are fine: speed does not depend on them.

  /usr/bin/python3 tests/bench/make_vit_bundle.py OUT_DIR [--layers 12] [--width 768]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from export_clip import sha256  # noqa: E402  (the bundle writers' one checksum helper)


class VisionTransformer(nn.Module):
    def __init__(self, size=224, patch=32, width=768, layers=12, heads=12, output=512):
        super().__init__()
        self.patches = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        count = (size // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.position = nn.Parameter(torch.randn(1, count + 1, width) * 0.01)
        self.pre_norm = nn.LayerNorm(width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.post_norm = nn.LayerNorm(width)
        self.projection = nn.Parameter(torch.randn(width, output) * width ** -0.5)

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.position
        x = self.blocks(self.pre_norm(x))
        y = self.post_norm(x[:, 0]) @ self.projection
        return y / y.norm(dim=1, keepdim=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = VisionTransformer(width=args.width, layers=args.layers, heads=args.width // 64).eval()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "image_encoder.pt")
    with torch.no_grad():
        torch.jit.trace(model, torch.randn(2, 3, 224, 224)).save(path)
    bundle = {
        "format": "lookbook-bundle", "version": 1, "kind": "clip", "name": "vit-b32-random",
        "embedding_dim": 512,
        "image": {"encoder": "image_encoder.pt", "input_size": 224, "resize": "short_side_center_crop",
                  "channel_order": "rgb", "mean": [0.48145466, 0.4578275, 0.40821073],
                  "std": [0.26862954, 0.26130258, 0.27577711]},
        "files": {"image_encoder.pt": sha256(path)},
    }
    with open(os.path.join(args.out, "bundle.json"), "w") as f:
        json.dump(bundle, f, indent=2)


if __name__ == "__main__":
    main()
