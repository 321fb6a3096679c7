/**
 * safetensors codec: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`
 * and the raw little-endian tensor bytes. Hand-written because no npm
 * package for it exists in the registry here, and the format is this small.
 * Reads F32, F16, BF16 (widened to float32) and I32/I64 (for dumps); writes
 * F32 or BF16 (round to nearest even) for float data and I32 for integers.
 *
 * Large checkpoints are read tensor by tensor from an open file
 * (`readSafetensorsHeader` + `readTensorInto`), so loading never holds a
 * whole shard in memory next to the decoded weights.
 */

export type SafeDType = "F32" | "F16" | "BF16" | "I32" | "I64";

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** Float32Array for float dtypes, Int32Array for I32 (I64 is narrowed to I32). */
  data: Float32Array | Int32Array;
}

/** Where one tensor's bytes are in its file. */
export interface TensorEntry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  /** Byte offsets in the file (header included), end exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: TensorEntry[];
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
};

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * Parse the header at the start of `bytes` (at least 8 + its length) of a
 * file of `fileSize` bytes; `where` names the file in errors.
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  fileSize: number,
  where: string,
): SafetensorsHeader {
  if (fileSize < 8 || bytes.length < 8) {
    throw new Error(
      `${where}: too short for a safetensors file (${fileSize} bytes)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (hlen > fileSize - 8 || hlen > bytes.length - 8) {
    throw new Error(
      `${where}: header length ${hlen} exceeds the file size ${fileSize}`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new Error(
      `${where}: header is not valid JSON (${(e as Error).message})`,
    );
  }
  const base = 8 + hlen;
  const entries: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    if (!(dtype in BYTES)) {
      throw new Error(
        `${where}: tensor ${name} has unsupported dtype ${dtype} (F32, F16, BF16, I32, I64 are read)`,
      );
    }
    const dt = dtype as SafeDType;
    const n = shape.reduce((a, b) => a * b, 1);
    const [b0, b1] = data_offsets;
    if (b1 - b0 !== n * BYTES[dt] || base + b1 > fileSize) {
      throw new Error(
        `${where}: tensor ${name} [${shape}] ${dt} has data_offsets [${b0}, ${b1}] inconsistent with its shape or the file size`,
      );
    }
    entries.push({ name, dtype: dt, shape, begin: base + b0, end: base + b1 });
  }
  return { entries, metadata };
}

/** The header of an open safetensors file. */
export async function readSafetensorsHeader(
  file: Deno.FsFile,
  where: string,
): Promise<SafetensorsHeader> {
  const size = (await file.stat()).size;
  const head = await readAt(file, 0, Math.min(8, size));
  if (size < 8) return parseSafetensorsHeader(head, size, where);
  const hlen = Number(new DataView(head.buffer).getBigUint64(0, true));
  if (hlen > size - 8) return parseSafetensorsHeader(head, size, where);
  const bytes = new Uint8Array(8 + hlen);
  bytes.set(head);
  bytes.set(await readAt(file, 8, hlen), 8);
  return parseSafetensorsHeader(bytes, size, where);
}

/** Exactly `n` bytes of `file` from `offset`. */
async function readAt(
  file: Deno.FsFile,
  offset: number,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const r = await file.read(out.subarray(got));
    if (r === null) {
      throw new Error(`unexpected end of file at ${offset + got}`);
    }
    got += r;
  }
  return out;
}

/**
 * Decode a tensor's raw little-endian bytes into `dst` (length = element
 * count): floats widen to float32, I64 narrows to I32.
 */
export function decodeInto(
  raw: Uint8Array,
  dtype: SafeDType,
  dst: Float32Array | Int32Array,
): void {
  const n = dst.length;
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  if (dtype === "F32" || dtype === "I32") {
    new Uint8Array(dst.buffer, dst.byteOffset, 4 * n).set(
      aligned.subarray(0, 4 * n),
    );
  } else if (dtype === "I64") {
    const v = new DataView(aligned.buffer, aligned.byteOffset, 8 * n);
    for (let i = 0; i < n; i++) dst[i] = Number(v.getBigInt64(8 * i, true));
  } else if (dtype === "BF16") {
    // little-endian hosts: a bf16 is the upper half of a float32
    const src = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    const out = new Uint32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = src[i] << 16;
  } else {
    const src = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    for (let i = 0; i < n; i++) dst[i] = f16ToF32(src[i]);
  }
}

/** Read one tensor of an open file into `dst` (length = its element count). */
export async function readTensorInto(
  file: Deno.FsFile,
  entry: TensorEntry,
  dst: Float32Array | Int32Array,
): Promise<void> {
  decodeInto(
    await readAt(file, entry.begin, entry.end - entry.begin),
    entry.dtype,
    dst,
  );
}

/** Parse a safetensors file's bytes; `where` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, where: string): {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  const { entries, metadata } = parseSafetensorsHeader(
    bytes,
    bytes.length,
    where,
  );
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const float = e.dtype !== "I32" && e.dtype !== "I64";
    const data = float ? new Float32Array(n) : new Int32Array(n);
    decodeInto(bytes.subarray(e.begin, e.end), e.dtype, data);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** float32 -> bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function bf16Bits(f32Bits: number): number {
  if ((f32Bits & 0x7f800000) === 0x7f800000 && (f32Bits & 0x7fffff) !== 0) {
    return ((f32Bits >>> 16) | 0x40) & 0xffff; // quiet NaN
  }
  const rounded = f32Bits + 0x7fff + ((f32Bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Float storage type written for float tensors. */
export type FloatDType = "F32" | "BF16";

/** Bytes one tensor takes on disk. */
export function storedBytes(
  data: { length: number } & (Float32Array | Int32Array),
  float: FloatDType,
): number {
  return data instanceof Int32Array || float === "F32"
    ? 4 * data.length
    : 2 * data.length;
}

/** The header bytes (padded so the data starts 8-byte aligned) for tensors in order. */
export function encodeHeader(
  tensors: { name: string; shape: number[]; dtype: SafeDType }[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [off, off + BYTES[t.dtype] * n],
    };
    off += BYTES[t.dtype] * n;
  }
  let json = JSON.stringify(header);
  // pad the header with spaces so the data starts 8-byte aligned (as the reference writer does)
  json += " ".repeat(
    (8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8,
  );
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  return out;
}

/** One tensor's stored bytes (F32/I32 as is, BF16 rounded). */
export function encodeData(
  data: Float32Array | Int32Array,
  float: FloatDType,
): Uint8Array {
  if (data instanceof Int32Array || float === "F32") {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      .slice();
  }
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < out.length; i++) out[i] = bf16Bits(bits[i]);
  return new Uint8Array(out.buffer);
}

/** The safetensors dtype a tensor is written with. */
export function storedDType(
  data: Float32Array | Int32Array,
  float: FloatDType,
): SafeDType {
  return data instanceof Int32Array ? "I32" : float;
}

/**
 * Serialize tensors (float data as `float`, default F32; Int32Array as
 * I32) in the given order.
 */
export function encodeSafetensors(
  tensors: [string, { shape: number[]; data: Float32Array | Int32Array }][],
  metadata: Record<string, string> = {},
  float: FloatDType = "F32",
): Uint8Array {
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(
        `safetensors: tensor ${name} has ${t.data.length} values for shape [${t.shape}]`,
      );
    }
  }
  const head = encodeHeader(
    tensors.map(([name, t]) => ({
      name,
      shape: t.shape,
      dtype: storedDType(t.data, float),
    })),
    metadata,
  );
  const size = tensors.reduce((a, [, t]) => a + storedBytes(t.data, float), 0);
  const out = new Uint8Array(head.length + size);
  out.set(head);
  let at = head.length;
  for (const [, t] of tensors) {
    const bytes = encodeData(t.data, float);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}
