#!/usr/bin/env python3
"""Exports a clothing segmenter into a lookbook segmenter bundle (see models/README.md).

  # SegFormer trained on ATR clothes (18 classes; pip install transformers):
  python3 models/export_unet.py --source segformer --model mattmdjaga/segformer_b2_clothes --out bundles/segformer-clothes
  # The public U2-Net cloth segmentation model (4 classes): its network code and checkpoint
  # come from its repository (levindabhi/cloth-segmentation): pass the folder holding
  # networks/u2net.py and the checkpoint file.
  python3 models/export_unet.py --source u2net --repo ~/cloth-segmentation --checkpoint cloth_segm_u2net_latest.pth --out bundles/u2net-cloth
  # A tiny stand-in in plain PyTorch (no download), for tests:
  python3 models/export_unet.py --source stand-in --out /tmp/unet-standin

The traced module takes float32 [n, 3, S, S] (letterboxed to a square, normalised with the
model's mean and std) and returns class logits [n, C, S, S] at the input resolution (models
that predict at a lower resolution are upsampled inside the module). bundle.json lists the
classes in output order and a default class-to-slot map onto lookbook's slots (top, bottom,
dress, outerwear, shoes, bag, accessory); classes without a slot (hair, face, skin) are not
garments.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_clip import sha256  # noqa: E402  (one checksum helper for every bundle writer)

SEGFORMER_CLASSES = ["background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt",
                     "left-shoe", "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf"]
SEGFORMER_SLOTS = {"hat": "accessory", "sunglasses": "accessory", "upper-clothes": "top", "skirt": "bottom",
                   "pants": "bottom", "dress": "dress", "belt": "accessory", "left-shoe": "shoes",
                   "right-shoe": "shoes", "bag": "bag", "scarf": "accessory"}
U2NET_CLASSES = ["background", "upper-body", "lower-body", "full-body"]
U2NET_SLOTS = {"upper-body": "top", "lower-body": "bottom", "full-body": "dress"}
DEMO_CLASSES = ["background", "top", "bottom", "dress", "shoes", "bag"]


class AtInputResolution(nn.Module):
    def __init__(self, model, pick):
        super().__init__()
        self.model = model
        self.pick = pick

    def forward(self, x):
        logits = self.pick(self.model(x))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits


class StandIn(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                    nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.decode = nn.Conv2d(16 + 3, classes, 1)

    def forward(self, x):
        deep = F.interpolate(self.encode(x), size=x.shape[-2:], mode="nearest")
        return self.decode(torch.cat([deep, x], 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, choices=["segformer", "u2net", "stand-in"])
    parser.add_argument("--model", help="Hugging Face model id (segformer)")
    parser.add_argument("--repo", help="u2net: the cloth-segmentation repository folder")
    parser.add_argument("--checkpoint", help="u2net: the checkpoint file")
    parser.add_argument("--size", type=int, help="input size (default: the model's own)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    if args.source == "segformer":
        from transformers import SegformerForSemanticSegmentation
        model = SegformerForSemanticSegmentation.from_pretrained(args.model).eval()
        classes = [model.config.id2label[i].lower() for i in range(len(model.config.id2label))]
        slots = {c: s for c, s in SEGFORMER_SLOTS.items() if c in classes}
        module, size = AtInputResolution(model, lambda out: out.logits), args.size or 512
    elif args.source == "u2net":
        sys.path.insert(0, args.repo)
        from networks import U2NET  # the repository's network definition
        model = U2NET(in_ch=3, out_ch=4)
        state = torch.load(args.checkpoint, map_location="cpu")
        model.load_state_dict({k.replace("module.", "", 1): v for k, v in state.items()})
        classes, slots = U2NET_CLASSES, U2NET_SLOTS
        module, size = AtInputResolution(model.eval(), lambda out: out[0]), args.size or 768
        mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    else:
        torch.manual_seed(0)
        classes, slots = DEMO_CLASSES, {c: c for c in DEMO_CLASSES[1:]}
        module, size = StandIn(len(classes)).eval(), args.size or 64
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "segmenter.pt")
    with torch.no_grad():
        torch.jit.trace(module, torch.randn(2, 3, size, size), check_trace=False).save(path)
    bundle = {
        "format": "lookbook-bundle", "version": 1, "kind": "segmenter",
        "name": (args.model or args.source).replace("/", "-"),
        "image": {"encoder": "segmenter.pt", "input_size": size, "resize": "pad_to_square", "channel_order": "rgb",
                  "mean": mean, "std": std},
        "segmenter": {"classes": classes, "slots": slots},
        "export": {"source": args.source, "model": args.model, "torch": torch.__version__},
        "files": {"segmenter.pt": sha256(path)},
    }
    with open(os.path.join(args.out, "bundle.json"), "w") as f:
        json.dump(bundle, f, indent=2)
    print(f"wrote {args.out}: {len(classes)} classes, {size} px input")


if __name__ == "__main__":
    main()
