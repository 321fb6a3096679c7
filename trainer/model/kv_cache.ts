/**
 * Key/value cache for incremental decoding (generation only; training
 * forwards never create or receive one). Updated in place by `forward`, like
 * HF's `DynamicCache`.
 */
import type { tf } from "../runtime.ts";

export interface LayerKV {
  /** Keys, transposed for the q @ kT product: [B, nKV, headDim, Tk]. */
  kT: tf.Tensor4D;
  /** Values: [B, nKV, Tk, headDim]. */
  v: tf.Tensor4D;
}

export class KVCache {
  /** One entry per decoder layer (empty until the first forward). */
  layers: LayerKV[] = [];
  /** Per batch row: 1 where the cached key is a real token, 0 for left padding. */
  keyValid: Uint8Array[];
  /** Per batch row: the text position the next token takes (mRoPE max + 1). */
  nextPosition: number[];

  constructor(batch: number) {
    this.keyValid = Array.from({ length: batch }, () => new Uint8Array(0));
    this.nextPosition = new Array(batch).fill(0);
  }

  get batch(): number {
    return this.keyValid.length;
  }

  /** Cached positions per row (Tk). */
  get length(): number {
    return this.keyValid[0]?.length ?? 0;
  }

  /** Release every cached tensor; the cache is empty afterwards. */
  dispose(): void {
    for (const l of this.layers) {
      l.kT.dispose();
      l.v.dispose();
    }
    this.layers = [];
    this.keyValid = this.keyValid.map(() => new Uint8Array(0));
  }
}
