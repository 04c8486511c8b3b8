#!/usr/bin/env python3
"""Exports a pretrained CLIP into a lookbook bundle (see models/README.md).

  # open_clip (pip install open_clip_torch), e.g. ViT-B/32 or ViT-L/14:
  python3 models/export_clip.py --source open_clip --model ViT-B-32 --pretrained laion2b_s34b_b79k --out bundles/vit-b32
  # Hugging Face transformers, e.g. FashionCLIP or OpenAI's checkpoints:
  python3 models/export_clip.py --source hf --model patrickjohncyh/fashion-clip --out bundles/fashion-clip
  # A randomly initialised transformers CLIPModel of ViT-B/32 size (no download), to check the path:
  python3 models/export_clip.py --source hf-random --out /tmp/clip-random
  # A tiny stand-in written with plain PyTorch (no download, no transformers), for tests:
  python3 models/export_clip.py --source stand-in --out /tmp/clip-standin --vocab PATH/TO/bpe_simple_vocab_16e6.txt.gz

The image and text towers are traced separately, each with its projection and L2
normalisation inside. The image tower takes float32 [n, 3, S, S] normalised with the
model's own mean and std; the text tower takes int64 [n, 77] ids from CLIP's BPE tokenizer,
start and end tokens included and zero padded (CLIP's text transformer is causal and pools
at the end token, so padding after it changes nothing). The bundle carries CLIP's merges
file (the `--vocab` file, or the one shipped with open_clip) and the sha256 of every file.
Check the result with `lookbook embed-text --model OUT --text "a red dress"`.
"""
import argparse
import hashlib
import json
import os
import shutil

import torch
from torch import nn

CONTEXT = 77
START, END = 49406, 49407


class ImageTower(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        y = self.model.encode_image(x)
        return y / y.norm(dim=-1, keepdim=True)


class TextTower(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        y = self.model.encode_text(ids)
        return y / y.norm(dim=-1, keepdim=True)


class StandIn(nn.Module):
    """A small CLIP-shaped model: patch-embedding image tower, embedding-bag text tower."""

    def __init__(self, dim=64, size=64, vocab=49408):
        super().__init__()
        self.patches = nn.Conv2d(3, 32, kernel_size=16, stride=16)
        self.image_projection = nn.Linear(32 * (size // 16) ** 2, dim)
        self.tokens = nn.Embedding(vocab, 32)
        self.text_projection = nn.Linear(32, dim)

    def encode_image(self, x):
        return self.image_projection(torch.relu(self.patches(x)).flatten(1))

    def encode_text(self, ids):
        mask = (ids > 0).unsqueeze(-1).float()
        return self.text_projection((self.tokens(ids) * mask).sum(1) / mask.sum(1).clamp(min=1))


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(args):
    """(model with encode_image/encode_text, input size, mean, std, embedding dim, vocab path)."""
    if args.source == "open_clip":
        import open_clip
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=args.pretrained)
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        mean = list(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
        std = list(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
        vocab = args.vocab or os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
        dim = model.text_projection.shape[1] if hasattr(model, "text_projection") else model.visual.output_dim
        return model, size, mean, std, int(dim), vocab
    if args.source in ("hf", "hf-random"):
        from transformers import CLIPConfig, CLIPModel

        class HfAdapter(nn.Module):
            def __init__(self, clip):
                super().__init__()
                self.clip = clip

            def encode_image(self, x):
                return self.clip.get_image_features(pixel_values=x)

            def encode_text(self, ids):
                return self.clip.get_text_features(input_ids=ids)

        if args.source == "hf":
            from transformers import CLIPImageProcessor
            clip = CLIPModel.from_pretrained(args.model)
            processor = CLIPImageProcessor.from_pretrained(args.model)
            size = processor.crop_size["height"] if isinstance(processor.crop_size, dict) else processor.crop_size
            mean, std = list(processor.image_mean), list(processor.image_std)
        else:  # ViT-B/32 sized, random weights
            config = CLIPConfig()
            config.vision_config.patch_size = 32
            clip = CLIPModel(config)
            size, mean, std = 224, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
        if not args.vocab:
            raise SystemExit("--vocab: CLIP's merges file (bpe_simple_vocab_16e6.txt.gz) is needed for hf sources")
        return HfAdapter(clip.eval()), int(size), mean, std, int(clip.config.projection_dim), args.vocab
    if args.source == "stand-in":
        if not args.vocab:
            raise SystemExit("--vocab: CLIP's merges file is needed")
        torch.manual_seed(0)
        return StandIn(), 64, [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711], 64, args.vocab
    raise SystemExit(f"unknown --source {args.source}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, choices=["open_clip", "hf", "hf-random", "stand-in"])
    parser.add_argument("--model", help="open_clip architecture name or Hugging Face model id")
    parser.add_argument("--pretrained", help="open_clip pretrained tag")
    parser.add_argument("--vocab", help="CLIP's merges file (bpe_simple_vocab_16e6.txt.gz)")
    parser.add_argument("--name", help="bundle name (default: derived from the model)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    model, size, mean, std, dim, vocab = load(args)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    image_path = os.path.join(args.out, "image_encoder.pt")
    text_path = os.path.join(args.out, "text_encoder.pt")
    with torch.no_grad():
        image = torch.jit.trace(ImageTower(model), torch.randn(2, 3, size, size))
        ids = torch.zeros(2, CONTEXT, dtype=torch.long)
        ids[:, 0], ids[:, 1], ids[:, 2] = START, 320, END  # "<start> a <end>"
        text = torch.jit.trace(TextTower(model), ids)
    image.save(image_path)
    text.save(text_path)
    vocab_name = os.path.basename(vocab)
    shutil.copyfile(vocab, os.path.join(args.out, vocab_name))
    bundle = {
        "format": "lookbook-bundle", "version": 1, "kind": "clip",
        "name": args.name or (args.model or args.source).replace("/", "-"),
        "embedding_dim": dim,
        "image": {"encoder": "image_encoder.pt", "input_size": size, "resize": "short_side_center_crop",
                  "channel_order": "rgb", "mean": mean, "std": std},
        "text": {"encoder": "text_encoder.pt", "tokenizer": "clip_bpe", "vocab": vocab_name, "context_length": CONTEXT},
        "export": {"source": args.source, "model": args.model, "pretrained": args.pretrained,
                   "torch": torch.__version__},
        "files": {name: sha256(os.path.join(args.out, name)) for name in ["image_encoder.pt", "text_encoder.pt", vocab_name]},
    }
    with open(os.path.join(args.out, "bundle.json"), "w") as f:
        json.dump(bundle, f, indent=2)
    print(f"wrote {args.out}: {dim}-d embeddings, {size} px input")


if __name__ == "__main__":
    main()
