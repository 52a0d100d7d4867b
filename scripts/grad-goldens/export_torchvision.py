"""Export randomly initialised torchvision models the ways users do (legacy exporter with its defaults or
training=PRESERVE, dynamo exporter with a static batch), at 64x64 (Inception 96x96), for checking which forms
build a train step:

    venv/bin/python export_torchvision.py [NAME ...]     # into the current directory
    cargo run --release -p converters --example train_step_check -- *.onnx

Uses the venv make.sh creates (torch, torchvision, onnx, onnxscript from PyPI). Never run by a test.
"""
import torch, torchvision, onnx, sys, warnings
warnings.filterwarnings("ignore")
print(torch.__version__, torchvision.__version__)
from torchvision import models as M
def legacy(name, m, size=64, dyn=True, training=torch.onnx.TrainingMode.EVAL, fold=True):
    m.eval(); x = torch.randn(2, 3, size, size)
    kw = dict(input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False, training=training, do_constant_folding=fold)
    if dyn: kw["dynamic_axes"] = {"x": {0: "N"}, "logits": {0: "N"}}
    torch.onnx.export(m, (x,), f"{name}.onnx", **kw)
def dynamo(name, m, size=64, dyn=False):
    m.eval(); x = torch.randn(2, 3, size, size)
    kw = dict(input_names=["x"], output_names=["logits"], dynamo=True, external_data=False)
    if dyn: kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("N")}}
    torch.onnx.export(m, (x,), f"{name}.onnx", **kw)
which = sys.argv[1:]
todo = {
 "shufflenet_legacy": lambda: legacy("shufflenet_legacy", M.shufflenet_v2_x0_5()),
 "shufflenet_dynamo_static": lambda: dynamo("shufflenet_dynamo_static", M.shufflenet_v2_x0_5()),
 "resnet18_dynamo_static": lambda: dynamo("resnet18_dynamo_static", M.resnet18()),
 "resnet18_preserve": lambda: legacy("resnet18_preserve", M.resnet18(), training=torch.onnx.TrainingMode.PRESERVE, fold=False),
 "mobilenet_v3_legacy": lambda: legacy("mobilenet_v3_legacy", M.mobilenet_v3_small()),
 "googlenet_legacy": lambda: legacy("googlenet_legacy", M.googlenet(aux_logits=False, init_weights=True)),
 "inception_legacy": lambda: legacy("inception_legacy", M.inception_v3(aux_logits=False, init_weights=True), size=96),
 "mnasnet_legacy": lambda: legacy("mnasnet_legacy", M.mnasnet0_5()),
 "densenet_legacy": lambda: legacy("densenet_legacy", M.densenet121()),
 "efficientnet_legacy": lambda: legacy("efficientnet_legacy", M.efficientnet_b0()),
 "regnet_legacy": lambda: legacy("regnet_legacy", M.regnet_y_400mf()),
 "squeezenet_legacy": lambda: legacy("squeezenet_legacy", M.squeezenet1_0()),
 "mobilenet_v2_dynamo": lambda: dynamo("mobilenet_v2_dynamo", M.mobilenet_v2()),
}
for k in which or todo:
    try:
        todo[k](); 
        mm = onnx.load(f"{k}.onnx")
        from collections import Counter
        c = Counter(n.op_type for n in mm.graph.node)
        print(k, "ir", mm.ir_version, "opset", [o.version for o in mm.opset_import], dict(c))
    except Exception as e:
        print(k, "FAILED", type(e).__name__, str(e)[:300])
