#!/usr/bin/env python3
"""Writes weights in the layouts of other tools, for tests/MoCo.Host.Tests/WeightsInTests.

Usage: /usr/bin/python3 tests/python/make_official.py ENCODER.pth OUT_DIR

ENCODER.pth is a torchvision-named state_dict with its head (moco export --with-head). OUT_DIR receives:
  official.pth.tar  facebookresearch/moco main_moco.py's checkpoint of those weights: {"epoch", "arch",
                    "state_dict": {"module.encoder_q.*", "module.encoder_k.*", "module.queue", "module.queue_ptr"},
                    "optimizer": an SGD state_dict with momentum buffers}, written by torch.save as main_moco.py does;
  torchvision.pth   the same weights loaded strictly into a torchvision ResNet-18 (conv1 and fc adapted to the
                    checkpoint's shapes) and saved from model.state_dict(): torchvision's own names and order;
  unknown.pth       a torch.save of {"weights": tensor}, which no layout describes.
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision


def main():
    source, out = sys.argv[1], sys.argv[2]
    sd = torch.load(source, map_location="cpu")
    width = sd["conv1.weight"].shape[0]
    mlp = "fc.0.weight" in sd
    dim = (sd["fc.2.weight"] if mlp else sd["fc.weight"]).shape[0]

    # a torchvision ResNet-18 of the checkpoint's width: torchvision fixes 64 base channels, so build its blocks by hand
    model = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2])
    if width != 64:
        model = narrow_resnet18(width)
    if sd["conv1.weight"].shape[2] == 3:
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    features = width * 8
    model.fc = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, dim)) if mlp else nn.Linear(features, dim)
    model.load_state_dict(sd, strict=True)
    torch.save(model.state_dict(), os.path.join(out, "torchvision.pth"))

    state = {}
    for k, v in model.state_dict().items():
        state["module.encoder_q." + k] = v.clone()  # state_dict() shares storage with the parameters the step below changes
    for k, v in model.state_dict().items():
        state["module.encoder_k." + k] = v.clone()
    state["module.queue"] = nn.functional.normalize(torch.randn(dim, 64), dim=0)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    loss = model(torch.randn(2, 3, 32, 32)).sum()
    loss.backward()
    optimizer.step()
    model.load_state_dict(sd, strict=True)  # the step changed the weights; the checkpoint keeps the source's
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state, "optimizer": optimizer.state_dict()},
               os.path.join(out, "official.pth.tar"))
    torch.save({"weights": torch.zeros(3)}, os.path.join(out, "unknown.pth"))
    print(f"wrote official.pth.tar, torchvision.pth, unknown.pth: width {width}, {'mlp' if mlp else 'linear'} head of {dim}")
    return 0


def narrow_resnet18(width):
    # torchvision's ResNet with every channel count scaled from 64 to width
    class Narrow(torchvision.models.resnet.ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes = width
            self.dilation = 1
            self.groups = 1
            self.base_width = 64
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            block = torchvision.models.resnet.BasicBlock
            self.layer1 = self._make_layer(block, width, 2)
            self.layer2 = self._make_layer(block, width * 2, 2, stride=2)
            self.layer3 = self._make_layer(block, width * 4, 2, stride=2)
            self.layer4 = self._make_layer(block, width * 8, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(width * 8, 1000)
    return Narrow()


if __name__ == "__main__":
    sys.exit(main())
