// A minimal protocol-buffers writer for the ONNX model format (onnx.proto3): just the messages and field numbers EMSeg
// emits. Writing ONNX directly keeps the export dependency-free and byte-for-byte deterministic.
//
// Field numbers (onnx.proto): ModelProto{ir_version=1, producer_name=2, producer_version=3, graph=7, opset_import=8,
// metadata_props=14}; OperatorSetIdProto{domain=1, version=2}; GraphProto{node=1, name=2, initializer=5, input=11,
// output=12}; NodeProto{input=1, output=2, name=3, op_type=4, attribute=5}; AttributeProto{name=1, f=2, i=3, s=4,
// floats=7, ints=8, type=20}; TensorProto{dims=1, data_type=2, name=8, raw_data=9}; ValueInfoProto{name=1, type=2};
// TypeProto{tensor_type=1}; TypeProto.Tensor{elem_type=1, shape=2}; TensorShapeProto{dim=1};
// Dimension{dim_value=1, dim_param=2}; StringStringEntryProto{key=1, value=2}.

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  private varint(v: bigint): void {
    // Negative int64 values are encoded as their 64-bit two's complement (10 bytes), as protobuf specifies.
    let x = BigInt.asUintN(64, v);
    const bytes: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (x !== 0n);
    this.push(Uint8Array.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

export const TensorType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  type: number;
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
}

export interface OnnxValueInfo {
  name: string;
  type: number;
  /** number = fixed size, string = symbolic dimension. */
  shape: Array<number | string>;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

function attribute(name: string, v: AttrValue): ProtoWriter {
  const a = new ProtoWriter().string(1, name);
  if (typeof v === 'number') return a.int(3, v).int(20, AttrType.INT);
  if (typeof v === 'string') return a.bytes(4, new TextEncoder().encode(v)).int(20, AttrType.STRING);
  if (Array.isArray(v)) {
    for (const x of v) a.int(8, x);
    return a.int(20, AttrType.INTS);
  }
  if ('float' in v) return a.float(2, v.float).int(20, AttrType.FLOAT);
  for (const x of v.floats) a.float(7, x);
  return a.int(20, AttrType.FLOATS);
}

function tensor(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.type).string(8, t.name);
  return w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function valueInfo(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tt = new ProtoWriter().int(1, v.type).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tt));
}

export function encodeModel(graph: OnnxGraph, opts: { opset: number; producer: string; metadata?: Record<string, string>; extraOpsets?: Array<{ domain: string; version: number }> }): Uint8Array {
  const g = new ProtoWriter();
  graph.nodes.forEach((n, i) => {
    const node = new ProtoWriter();
    for (const x of n.inputs) node.string(1, x);
    for (const x of n.outputs) node.string(2, x);
    node.string(3, n.name ?? `${n.op}_${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.message(5, attribute(k, v));
    if (n.domain) node.string(7, n.domain);
    g.message(1, node);
  });
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, tensor(t));
  for (const v of graph.inputs) g.message(11, valueInfo(v));
  for (const v of graph.outputs) g.message(12, valueInfo(v));
  const m = new ProtoWriter().int(1, 8).string(2, opts.producer).string(3, '0.1.0').message(7, g);
  m.message(8, new ProtoWriter().string(1, '').int(2, opts.opset));
  for (const o of opts.extraOpsets ?? []) m.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(opts.metadata ?? {})) m.message(14, new ProtoWriter().string(1, k).string(2, v));
  return m.finish();
}
