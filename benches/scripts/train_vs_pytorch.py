"""Train step of ratio (ONNX Runtime, generated train-step graph) against PyTorch eager on the same network with the
same weights: SGD (momentum 0.9, weight decay 5e-4), cross-entropy, BatchNorm in training mode, 2 threads.

The network is built in PyTorch, written to ONNX by hand from its modules and state dict (Conv/BN/Relu/Add/MaxPool/
GlobalAveragePool/Flatten/Gemm, opset 17, IR 8, BN unfolded), and `ratio bench-train --model FILE.onnx` times the
step on that file. Rounds alternate ratio and PyTorch; each round reports its median step time, and the summary is
the median over rounds of both and of the per-round ratio ratio/PyTorch.

Usage (from benches/scripts/train_vs_pytorch.sh): python train_vs_pytorch.py RATIO_BIN {resnet20|resnet18} BATCH
ROUNDS ITERS
"""

import json
import os
import statistics as st
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    """resnet20: CIFAR-style (3x3 stem, 3 stages of 3 blocks, 16/32/64); resnet18: torchvision-style (7x7/2 stem,
    3x3/2 max pool, 4 stages of 2 blocks, 64..512, 1000 classes)."""

    def __init__(self, kind):
        super().__init__()
        if kind == "resnet20":
            self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            self.pool = False
            widths, depth, classes, c = [16, 32, 64], 3, 10, 16
        else:
            self.stem = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn = nn.BatchNorm2d(64)
            self.pool = True
            widths, depth, classes, c = [64, 128, 256, 512], 2, 1000, 64
        blocks = []
        for i, w in enumerate(widths):
            for j in range(depth):
                blocks.append(Basic(c, w, 2 if (j == 0 and i > 0) else 1))
                c = w
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        if self.pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for b in self.blocks:
            x = b(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Writer:
    """Writes the modules above as ONNX nodes, reading weights from the state dict."""

    def __init__(self, model):
        self.nodes, self.inits, self.n = [], [], 0
        self.sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    def init(self, name):
        self.inits.append(numpy_helper.from_array(self.sd[name].astype(np.float32), name))
        return name

    def node(self, op, inputs, **attrs):
        self.n += 1
        out = f"{op.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", **attrs))
        return out

    def conv(self, x, prefix, m):
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        return self.node("Conv", [x, self.init(prefix + ".weight")], kernel_shape=[k, k], strides=[s, s],
                         pads=[p, p, p, p])

    def bn(self, x, prefix):
        names = [self.init(prefix + s) for s in (".weight", ".bias", ".running_mean", ".running_var")]
        return self.node("BatchNormalization", [x] + names, epsilon=1e-5, momentum=0.9)

    def block(self, x, p, b):
        y = self.node("Relu", [self.bn(self.conv(x, p + ".conv1", b.conv1), p + ".bn1")])
        y = self.bn(self.conv(y, p + ".conv2", b.conv2), p + ".bn2")
        sc = x if b.down is None else self.bn(self.conv(x, p + ".down.0", b.down[0]), p + ".down.1")
        return self.node("Relu", [self.node("Add", [y, sc])])

    def model(self, m, size):
        x = self.node("Relu", [self.bn(self.conv("input", "stem", m.stem), "bn")])
        if m.pool:
            x = self.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        for i, b in enumerate(m.blocks):
            x = self.block(x, f"blocks.{i}", b)
        x = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        out = self.node("Gemm", [x, self.init("fc.weight"), self.init("fc.bias")], transB=1)
        g = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", m.fc.out_features])],
            self.inits)
        mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="train_vs_pytorch")
        mp.ir_version = 8
        onnx.checker.check_model(mp)
        return mp


def torch_round(model, opt, x, y, iters):
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return st.median(times) * 1e3


def ratio_round(ratio, path, batch, iters):
    out = subprocess.run([ratio, "bench-train", "--model", path, "--batch", str(batch), "--threads", "2",
                          "--iters", str(iters)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["step_ms_median"]


def main():
    ratio, kind, batch, rounds, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(0)
    torch.set_num_threads(2)
    size = 32 if kind == "resnet20" else 224
    model = ResNet(kind)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{kind}.onnx")
        onnx.save(Writer(model).model(model, size), path)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        # The input ratio's bench feeds (deterministic, non-constant) and its labels (7·i mod classes).
        idx = np.indices((batch, 3, size, size))
        x = torch.from_numpy(((idx[0] * 131 + idx[2] * 29 + idx[3] * 7 + idx[1]) % 97).astype(np.float32) / 97)
        y = torch.from_numpy((np.arange(batch) * 7) % model.fc.out_features)
        torch_round(model, opt, x, y, 2)  # warm-up, as ratio's bench does two untimed steps
        r, p = [], []
        for i in range(rounds):
            r.append(ratio_round(ratio, path, batch, iters))
            p.append(torch_round(model, opt, x, y, iters))
            print(f"round {i + 1}: ratio {r[-1]:.1f} ms, pytorch {p[-1]:.1f} ms, ratio/pytorch {r[-1] / p[-1]:.3f}",
                  flush=True)
    q = [a / b for a, b in zip(r, p)]
    print(json.dumps({
        "net": kind, "input": [batch, 3, size, size], "threads": 2, "rounds": rounds, "iters_per_round": iters,
        "ratio_step_ms_median": st.median(r), "ratio_step_ms_range": [min(r), max(r)],
        "pytorch_step_ms_median": st.median(p), "pytorch_step_ms_range": [min(p), max(p)],
        "ratio_over_pytorch_median": st.median(q), "ratio_over_pytorch_range": [min(q), max(q)],
        "torch": torch.__version__, "load_after": open("/proc/loadavg").read().split()[:3],
    }, indent=1))


if __name__ == "__main__":
    main()
