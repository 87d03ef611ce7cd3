#!/usr/bin/env python3
"""PyTorch reference timings for `dacon bench`: the same shapes, random weights.

Models of the released shapes, written here from their published
architecture (no download): DACoN's U-Net (widths 64..512, bottleneck 1024,
3x3 conv + InstanceNorm + ReLU blocks, 2x2 max-pool, x2 bilinear
align_corners upsampling + conv, 1x1 output to 128 channels) at 512x512, and
DINOv2 ViT-S/14 and ViT-L/14 (pre-norm blocks with LayerScale, 4x GELU MLP)
at 518x518, batch 1, float32, inference under `torch.inference_mode()`.
The training figure is the U-Net's forward and backward over two 512x512
images (a training step's dominant cost; DINOv2 is frozen).

Usage: python3 scripts/torch_bench.py [--threads N] [--runs N]
Prints one line per stage with the median over the runs (after one warm-up).
"""

import argparse
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


def block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, hidden=(64, 128, 256, 512), output=128):
        super().__init__()
        self.down = nn.ModuleList()
        c = 3
        for h in hidden:
            self.down.append(block(c, h))
            c = h
        self.bottleneck = block(c, 2 * c)
        c = 2 * c
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for h in reversed(hidden):
            self.up.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                    nn.Conv2d(c, h, 3, padding=1),
                    nn.InstanceNorm2d(h),
                    nn.ReLU(inplace=True),
                )
            )
            self.dec.append(block(2 * h, h))
            c = h
        self.final = nn.Conv2d(c, output, 1)

    def forward(self, x):
        skips = []
        for b in self.down:
            x = b(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([skip, up(x)], 1))
        return self.final(x)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ls1 = nn.Parameter(torch.full((dim,), 1e-5))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ls2 = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.ls1 * self.attn(y, y, y, need_weights=False)[0]
        return x + self.ls2 * self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, dim, depth, heads, patch=14, size=518):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        n = (size // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


def median_seconds(f, runs):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--stages",
        default="unet,vits,vitl,train",
        help="comma-separated subset of unet,vits,vitl,train",
    )
    a = p.parse_args()
    stages = set(a.stages.split(","))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {a.runs}")

    unet = UNet().eval()
    x = torch.rand(1, 3, 512, 512)
    if "unet" in stages:
        with torch.inference_mode():
            s = median_seconds(lambda: unet(x), a.runs)
        print(f"U-Net forward 512x512        {s * 1e3:9.1f} ms")

    vits = [("vits", "ViT-S/14", 384, 12, 6), ("vitl", "ViT-L/14", 1024, 24, 16)]
    for key, name, dim, depth, heads in vits:
        if key not in stages:
            continue
        vit = ViT(dim, depth, heads).eval()
        x = torch.rand(1, 3, 518, 518)
        with torch.inference_mode():
            s = median_seconds(lambda: vit(x), a.runs)
        print(f"{name} forward 518x518     {s * 1e3:9.1f} ms")

    if "train" not in stages:
        return
    unet.train()
    x = torch.rand(2, 3, 512, 512)

    def step():
        unet.zero_grad()
        unet(x).square().mean().backward()

    s = median_seconds(step, a.runs)
    print(f"U-Net forward+backward 2x512 {s * 1e3:9.1f} ms")


if __name__ == "__main__":
    main()
