"""Golden gradients from PyTorch autograd for tiny torchvision-style nets, exported the ways users export them.

For each net: export it to ONNX (the legacy exporter with its defaults, the legacy exporter with
training=PRESERVE, or the dynamo exporter with a static batch of 2), then compute the mean cross-entropy
gradient of every parameter on a seeded batch of 4 with the model in training mode (BatchNorm on batch
statistics; Dropout off, as the ratio train step has it). Writes <name>.onnx and <name>.json:
{"exporter", "torch", "batch", "input_shape", "input", "labels", "loss", "grads": {parameter: [...]}}.
Parameters are named as PyTorch names them, which is also the ONNX name of the initializer (or of the Identity
output the exporter deduplicated it into).

Nets exported with the defaults have no BatchNorm: the legacy exporter folds BN into the convolutions and the
dynamo exporter's optimizer does the same, so a folded export trains a different parametrisation than the
PyTorch module; a BN-free module is what such an export is. PRESERVE keeps BN.

Run by make.sh in a throwaway venv; never by a test.
"""

import json
import sys
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.shufflenetv2 import channel_shuffle
from torchvision.ops.misc import SqueezeExcitation

warnings.filterwarnings("ignore")
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else ".")


def cba(cin, cout, k, stride=1, groups=1, act=nn.ReLU, bn=False):
    """Conv, then BN (or a conv bias instead, as a folded export has it), then an activation."""
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNet-V2 unit (stride 1: chunk, branch, cat, channel_shuffle), without BN."""

    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.branch2 = nn.Sequential(cba(h, h, 1), cba(h, h, 3, groups=h, act=None), cba(h, h, 1))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)


class ShuffleTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = cba(3, 8, 3)
        self.stage = nn.Sequential(ShuffleUnit(8), ShuffleUnit(8))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.stage(self.conv1(x)).mean([2, 3]))


class MobileTiny(nn.Module):
    """MobileNet-V3 pieces: Conv-HardSwish stem, depthwise, SE with HardSigmoid, HardSwish/Dropout classifier."""

    def __init__(self):
        super().__init__()
        self.stem = cba(3, 8, 3, 2, act=nn.Hardswish)
        self.dw = cba(8, 8, 3, groups=8)
        self.se = SqueezeExcitation(8, 4, scale_activation=nn.Hardsigmoid)
        self.project = cba(8, 12, 1, act=nn.Hardswish)
        self.classifier = nn.Sequential(nn.Linear(12, 16), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(16, 10))

    def forward(self, x):
        x = self.project(self.se(self.dw(self.stem(x))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResTiny(nn.Module):
    """A ResNet stem and basic block with BN, freshly initialised: PRESERVE deduplicates its BN tensors."""

    def __init__(self):
        super().__init__()
        self.conv1 = cba(3, 8, 3, bn=True)
        self.block = nn.Sequential(cba(8, 8, 3, bn=True), cba(8, 8, 3, act=None, bn=True))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(self.block(x) + x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PoolTiny(nn.Module):
    """GoogLeNet/Inception pooling: MaxPool ceil_mode, AvgPool count_include_pad, AvgPool ceil_mode."""

    def __init__(self):
        super().__init__()
        self.conv1 = cba(3, 8, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = cba(8, 8, 1)
        self.branch = nn.AvgPool2d(3, 1, 1)
        self.trans = nn.AvgPool2d(2, 2, ceil_mode=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.trans(self.branch(self.conv2(self.pool1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class FlatTiny(nn.Module):
    """Two convs, a channel shuffle and a flatten by view, for the dynamo exporter's static batch."""

    def __init__(self):
        super().__init__()
        self.conv1 = cba(3, 8, 3)
        self.conv2 = cba(8, 8, 3, 2)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv2(channel_shuffle(self.conv1(x), 2)).mean([2, 3], keepdim=True)
        return self.fc(x.view(x.size(0), -1))


def onnx_names(path):
    g = onnx.load(str(path)).graph
    return {t.name for t in g.initializer} | {o for n in g.node if n.op_type == "Identity" for o in n.output}


def export(name, model, size, mode, batch=4, seed=0):
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            # Non-zero biases, so the default exporter has no equal tensors to deduplicate.
            nn.init.uniform_(m.bias, -0.2, 0.2)
    model.eval()
    x = torch.randn(2, 3, size, size)
    path = OUT / f"{name}.onnx"
    if mode == "dynamo-static":
        torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], dynamo=True,
                          external_data=False)
    else:
        training = torch.onnx.TrainingMode.PRESERVE if mode == "preserve" else torch.onnx.TrainingMode.EVAL
        torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], dynamo=False,
                          opset_version=17, training=training, do_constant_folding=mode != "preserve",
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    g = torch.Generator().manual_seed(7)
    xin = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    labels = torch.randint(0, 10, (batch,), generator=g)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    model.zero_grad()
    loss = F.cross_entropy(model(xin), labels)
    loss.backward()
    names = onnx_names(path)
    params = dict(model.named_parameters())
    missing = sorted(k for k in params if k not in names)
    if missing:
        raise SystemExit(f"{name}: the export renamed {missing}")
    short = lambda t: [float(f"{v:.8g}") for v in t.flatten().tolist()]
    record = {
        "exporter": mode,
        "torch": torch.__version__,
        "batch": batch,
        "input_shape": list(xin.shape),
        "input": short(xin),
        "labels": labels.tolist(),
        "loss": loss.item(),
        "grads": {k: short(p.grad) for k, p in params.items()},
    }
    (OUT / f"{name}.json").write_text(json.dumps(record))
    print(f"{name}: {mode}, {len(params)} parameters, loss {loss.item():.5f}")


export("shufflenet_legacy", ShuffleTiny(), 8, "legacy")
export("shufflenet_dynamo_static", ShuffleTiny(), 8, "dynamo-static")
export("mobilenet_v3_legacy", MobileTiny(), 8, "legacy")
export("resnet_preserve", ResTiny(), 6, "preserve")
export("pools_legacy", PoolTiny(), 10, "legacy")
export("flatten_dynamo_static", FlatTiny(), 8, "dynamo-static")
