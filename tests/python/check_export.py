#!/usr/bin/env python3
"""Cross-check of MoCo.Actors' PyTorch export against real PyTorch/torchvision.

Usage: /usr/bin/python3 tests/python/check_export.py DIR

DIR holds manifest.json and the files it names, written by the C# test
Export_loads_strictly_in_torchvision. For every case this script:
  1. torch.load()s the exported file (weights_only=True where supported);
  2. for detectron2 names, checks the wrapper ("__author__", "matching_heuristics") and that the keys are
     exactly those the rules of facebookresearch/moco detection/convert-pretrain-to-detectron2.py give
     for torchvision's own state dict, then maps them back;
  3. checks every tensor's dtype, shape and SHA-256 of its bytes against what C# wrote;
  4. load_state_dict(strict=True) into torchvision's resnet (fc = nn.Identity() when the head is dropped,
     an MLP fc for MoCo v2, a 3x3 stride-1 conv1 and no maxpool for the CIFAR stem);
  5. in eval mode, compares relu(bn1(conv1(x))) with the stem output C# computed (max abs diff printed,
     tolerance 1e-4: float32 convolutions in two libtorch builds may sum in different orders), and runs
     the full forward, checking the output shape and that it is finite.
Exits non-zero on the first failing case.
"""
import hashlib
import json
import os
import pickle
import struct
import sys

import numpy as np

import torch
import torch.nn as nn
import torchvision

STEM_TOLERANCE = 1e-4
# the whole network: float32 convolutions in another library version and order; relative to outputs of order 1
OUTPUT_TOLERANCE = 1e-3


def d2_name(k):
    # facebookresearch/moco detection/convert-pretrain-to-detectron2.py, after removing "module.encoder_q."
    if "layer" not in k:
        k = "stem." + k
    for t in [1, 2, 3, 4]:
        k = k.replace("layer{}".format(t), "res{}".format(t + 1))
    for t in [1, 2, 3]:
        k = k.replace("bn{}".format(t), "conv{}.norm".format(t))
    k = k.replace("downsample.0", "shortcut")
    k = k.replace("downsample.1", "shortcut.norm")
    return k


def load_safetensors(path):
    # the format read by hand (the safetensors package is not in Debian 12): u64 header length, JSON header,
    # then each tensor's little-endian bytes at its data_offsets
    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n <= len(data) - 8, f"{path}: header length {n} exceeds the file"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    state = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        raw = bytearray(body[begin:end])
        t = torch.frombuffer(raw, dtype=dtypes[meta["dtype"]]) if raw else torch.empty(0, dtype=dtypes[meta["dtype"]])
        state[key] = t.reshape(meta["shape"]).clone()
    return state


def official_converter(obj):
    # facebookresearch/moco detection/convert-pretrain-to-detectron2.py, its loop verbatim (but for the I/O)
    newmodel = {}
    for k, v in obj.items():
        if not k.startswith("module.encoder_q."):
            continue
        old_k = k
        k = k.replace("module.encoder_q.", "")
        if "layer" not in k:
            k = "stem." + k
        for t in [1, 2, 3, 4]:
            k = k.replace("layer{}".format(t), "res{}".format(t + 1))
        for t in [1, 2, 3]:
            k = k.replace("bn{}".format(t), "conv{}.norm".format(t))
        k = k.replace("downsample.0", "shortcut")
        k = k.replace("downsample.1", "shortcut.norm")
        newmodel[k] = v.numpy()
    return {"model": newmodel, "__author__": "MOCO", "matching_heuristics": True}


def load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only
        return torch.load(path, map_location="cpu")


def build_model(case):
    arch = getattr(torchvision.models, case["arch"])
    head = case["head"]
    model = arch(num_classes=case["outputs"]) if head == "linear" else arch()
    if case["cifar_stem"]:
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    features = model.fc.in_features
    if head == "none":
        model.fc = nn.Identity()
    elif head == "mlp":
        model.fc = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, case["outputs"]))
    return model, (features if head == "none" else case["outputs"])


def tensor_sha256(t):
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


def check_case(directory, case):
    name = case["file"]
    fmt = case.get("format", "pth")
    path = os.path.join(directory, name)
    pkl = None
    if fmt == "safetensors":
        loaded = load_safetensors(path)
    elif fmt == "detectron2-pkl":
        with open(path, "rb") as f:
            pkl = pickle.load(f, encoding="latin1")  # as detectron2's checkpointer opens it
        assert all(isinstance(v, np.ndarray) for v in pkl["model"].values()), f"{name}: values are not numpy arrays"
        loaded = dict(pkl, model={k: torch.from_numpy(v) for k, v in pkl["model"].items()})
    else:
        loaded = load(path)
    if case["names"] == "detectron2":
        assert isinstance(loaded, dict) and set(loaded) == {"model", "__author__", "matching_heuristics"}, \
            f"{name}: not a detectron2 wrapper: {sorted(loaded) if isinstance(loaded, dict) else type(loaded)}"
        assert loaded["__author__"] == "MOCO", f"{name}: __author__ is {loaded['__author__']!r}"
        assert loaded["matching_heuristics"] is True, f"{name}: matching_heuristics is {loaded['matching_heuristics']!r}"
        state = loaded["model"]
    else:
        state = loaded
    assert all(isinstance(v, torch.Tensor) for v in state.values()), f"{name}: non-tensor values"

    expected = case["tensors"]
    in_order = list(state) if fmt != "safetensors" else sorted(state)  # safetensors' header is a JSON object
    assert in_order == (list(expected) if fmt != "safetensors" else sorted(expected)), f"{name}: keys differ or are out of order: " \
        f"missing {sorted(set(expected) - set(state))[:5]}, unexpected {sorted(set(state) - set(expected))[:5]}"
    for key, meta in expected.items():
        t = state[key]
        assert str(t.dtype) == "torch." + meta["dtype"], f"{name}:{key}: dtype {t.dtype}, expected {meta['dtype']}"
        assert list(t.shape) == meta["shape"], f"{name}:{key}: shape {list(t.shape)}, expected {meta['shape']}"
        assert tensor_sha256(t) == meta["sha256"], f"{name}:{key}: values differ from those C# wrote"

    model, out_dim = build_model(case)
    if case["names"] == "detectron2":
        back = {d2_name(k): k for k in model.state_dict()}
        assert set(state) == set(back), f"{name}: detectron2 keys differ from the converter's: " \
            f"missing {sorted(set(back) - set(state))[:5]}, unexpected {sorted(set(state) - set(back))[:5]}"
        state = {back[k]: v for k, v in state.items()}
    if pkl is not None:
        # the official converter, run on an official-layout checkpoint of the same weights, writes the same pickle
        official = official_converter({"module.encoder_q." + k: v for k, v in state.items()})
        assert list(official["model"]) == list(pkl["model"]), f"{name}: key order differs from the official converter's"
        for k, v in official["model"].items():
            ours = pkl["model"][k]
            assert ours.dtype == v.dtype and ours.shape == v.shape and np.array_equal(ours, v), f"{name}:{k}: differs from the official converter's array"
        assert {k: v for k, v in pkl.items() if k != "model"} == {k: v for k, v in official.items() if k != "model"}, f"{name}: wrapper differs"
    model.load_state_dict(state, strict=True)
    model.eval()

    io = load(os.path.join(directory, case["expected"]))
    x, stem_expected = io["input"], io["stem"]
    with torch.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        out = model(x)
    diff = (stem - stem_expected).abs().max().item()
    assert stem.shape == stem_expected.shape, f"{name}: stem shape {tuple(stem.shape)} vs {tuple(stem_expected.shape)}"
    assert diff <= STEM_TOLERANCE, f"{name}: stem output max abs diff {diff:.3g} > {STEM_TOLERANCE}"
    assert tuple(out.shape) == (x.shape[0], out_dim), f"{name}: output shape {tuple(out.shape)}, expected {(x.shape[0], out_dim)}"
    assert torch.isfinite(out).all(), f"{name}: non-finite output"
    out_diff = float("nan")
    if "output" in io:
        out_diff = (out - io["output"]).abs().max().item()
        assert out_diff <= OUTPUT_TOLERANCE, f"{name}: whole-network output max abs diff {out_diff:.3g} > {OUTPUT_TOLERANCE}"
    print(f"OK {name}: {fmt}, {len(expected)} tensors bit-exact, strict load into {case['arch']} "
          f"({case['names']} names, head {case['head']}, {'cifar' if case['cifar_stem'] else 'imagenet'} stem), "
          f"stem max abs diff {diff:.3g}, output {tuple(out.shape)} max abs diff {out_diff:.3g}")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    directory = sys.argv[1]
    with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    torch.set_num_threads(1)
    for case in manifest["cases"]:
        try:
            check_case(directory, case)
        except AssertionError as e:
            print(f"FAIL {e}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
