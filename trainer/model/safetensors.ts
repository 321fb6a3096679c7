/**
 * safetensors codec: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`
 * and the raw little-endian tensor bytes. Hand-written because no npm
 * package for it exists in the registry here, and the format is this small.
 * Reads F32, F16, BF16 (widened to float32) and I32/I64 (for dumps); writes
 * F32 and I32.
 */

export type SafeDType = "F32" | "F16" | "BF16" | "I32" | "I64";

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** Float32Array for float dtypes, Int32Array for I32 (I64 is narrowed to I32). */
  data: Float32Array | Int32Array;
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

/** Parse a safetensors file's bytes; `where` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, where: string): {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
} {
  if (bytes.length < 8) {
    throw new Error(
      `${where}: too short for a safetensors file (${bytes.length} bytes)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = Number(view.getBigUint64(0, true));
  if (hlen > bytes.length - 8) {
    throw new Error(
      `${where}: header length ${hlen} exceeds the file size ${bytes.length}`,
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
  const tensors = new Map<string, SafeTensor>();
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
    if (b1 - b0 !== n * BYTES[dt] || base + b1 > bytes.length) {
      throw new Error(
        `${where}: tensor ${name} [${shape}] ${dt} has data_offsets [${b0}, ${b1}] inconsistent with its shape or the file size`,
      );
    }
    const at = base + b0;
    let data: Float32Array | Int32Array;
    if (dt === "F32") {
      data = new Float32Array(n);
      new Uint8Array(data.buffer).set(bytes.subarray(at, at + 4 * n));
    } else if (dt === "I32") {
      data = new Int32Array(n);
      new Uint8Array(data.buffer).set(bytes.subarray(at, at + 4 * n));
    } else if (dt === "I64") {
      data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        data[i] = Number(view.getBigInt64(at + 8 * i, true));
      }
    } else if (dt === "BF16") {
      const u = new Uint32Array(n);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(at + 2 * i, true) << 16;
      data = new Float32Array(u.buffer);
    } else {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        data[i] = f16ToF32(view.getUint16(at + 2 * i, true));
      }
    }
    tensors.set(name, { dtype: dt, shape, data });
  }
  return { tensors, metadata };
}

/** Serialize tensors (F32 for Float32Array, I32 for Int32Array) in the given order. */
export function encodeSafetensors(
  tensors: [string, { shape: number[]; data: Float32Array | Int32Array }][],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(
        `safetensors: tensor ${name} has ${t.data.length} values for shape [${t.shape}]`,
      );
    }
    header[name] = {
      dtype: t.data instanceof Int32Array ? "I32" : "F32",
      shape: t.shape,
      data_offsets: [off, off + 4 * n],
    };
    off += 4 * n;
  }
  let json = JSON.stringify(header);
  // pad the header with spaces so the data starts 8-byte aligned (as the reference writer does)
  json += " ".repeat(
    (8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8,
  );
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const [, t] of tensors) {
    out.set(
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      at,
    );
    at += t.data.byteLength;
  }
  return out;
}
