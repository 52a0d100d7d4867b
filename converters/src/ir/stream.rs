//! Streaming model encoder: writes exactly the bytes `ModelProto::encode_to_vec` would, without building the
//! whole file in memory. A 100 MB model is written with one tensor's worth of buffer instead of 100 MB.
//!
//! prost encodes a message as its fields in tag order, so the model is written as: the fields with tags below
//! `graph` (7), the graph's key and length, the graph's own fields in tag order with initializers (5) one at a time,
//! then the fields with higher tags. The destructuring below names every field, so a regenerated proto with a new field
//! fails to compile here instead of silently dropping it.

use std::io::{self, Write};

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use crate::proto::{GraphProto, ModelProto};

fn key_len(tag: u32, len: usize, w: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16);
    encode_key(tag, WireType::LengthDelimited, &mut buf);
    encode_varint(len as u64, &mut buf);
    w.write_all(&buf)
}

pub fn write_model(m: &ModelProto, w: &mut dyn Write) -> io::Result<()> {
    let ModelProto {
        ir_version,
        opset_import,
        producer_name,
        producer_version,
        domain,
        model_version,
        doc_string,
        graph,
        metadata_props,
        training_info,
        functions,
        configuration,
    } = m;
    let head = ModelProto {
        ir_version: *ir_version,
        producer_name: producer_name.clone(),
        producer_version: producer_version.clone(),
        domain: domain.clone(),
        model_version: *model_version,
        doc_string: doc_string.clone(),
        ..Default::default()
    };
    w.write_all(&head.encode_to_vec())?;
    if let Some(g) = graph {
        key_len(7, g.encoded_len(), w)?;
        write_graph(g, w)?;
    }
    let tail = ModelProto {
        opset_import: opset_import.clone(),
        metadata_props: metadata_props.clone(),
        training_info: training_info.clone(),
        functions: functions.clone(),
        configuration: configuration.clone(),
        ..Default::default()
    };
    w.write_all(&tail.encode_to_vec())
}

fn write_graph(g: &GraphProto, w: &mut dyn Write) -> io::Result<()> {
    let GraphProto {
        node,
        name,
        initializer,
        sparse_initializer,
        doc_string,
        input,
        output,
        value_info,
        quantization_annotation,
        metadata_props,
    } = g;
    let head = GraphProto {
        node: node.clone(),
        name: name.clone(),
        ..Default::default()
    };
    w.write_all(&head.encode_to_vec())?;
    for t in initializer {
        key_len(5, t.encoded_len(), w)?;
        w.write_all(&t.encode_to_vec())?;
    }
    let tail = GraphProto {
        sparse_initializer: sparse_initializer.clone(),
        doc_string: doc_string.clone(),
        input: input.clone(),
        output: output.clone(),
        value_info: value_info.clone(),
        quantization_annotation: quantization_annotation.clone(),
        metadata_props: metadata_props.clone(),
        ..Default::default()
    };
    w.write_all(&tail.encode_to_vec())
}
