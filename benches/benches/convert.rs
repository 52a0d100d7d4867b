//! In-process conversion cost by graph size (no runtime): slot detection + plan + surgery + encode.

use converters::convert::convert;
use converters::ir::Model;
use converters::policy::Policy;
use criterion::{Criterion, criterion_group, criterion_main};
use models::ModelConfig;
use prost::Message;

fn bench_convert(c: &mut Criterion) {
    let mut group = c.benchmark_group("convert_2_1");
    group.sample_size(10);
    for (name, size, classes) in [("resnet20", 32, 10), ("resnet50", 224, 1000)] {
        let proto = models::by_name(name, &ModelConfig::new(3, size, classes)).unwrap();
        let model = Model::from_bytes(proto.encode_to_vec().into()).unwrap();
        group.bench_function(format!("cpu_{name}_plan_apply_encode"), |b| {
            b.iter(|| {
                let c = convert(&model, &Policy::default(), None).unwrap();
                let mut out = Vec::new();
                converters::ir::stream::write_model(&c.model.proto, &mut out).unwrap();
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_convert);
criterion_main!(benches);
