/**
 * Seeded data order with an exactly resumable cursor. Epoch `e` visits the
 * dataset in the permutation shuffled by the stream (training seed, "data",
 * e); the cursor is just (epoch, offset), so resuming needs no RNG state.
 */
import { mixSeed, Rng } from "../common/rng.ts";

/** Where the next sample comes from. */
export interface DataCursor {
  epoch: number;
  /** Index into that epoch's permutation of the next sample to draw. */
  offset: number;
}

const DATA_STREAM = 0x0da7a;

/** The visiting order of epoch `epoch` over `n` samples. */
export function epochPermutation(
  n: number,
  seed: number,
  epoch: number,
): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return Rng.fromSeed(mixSeed(seed, DATA_STREAM, epoch)).shuffle(order);
}

/** Draws sample indices in seeded epoch order, crossing epoch boundaries. */
export class DataOrder {
  private cursor: DataCursor = { epoch: 0, offset: 0 };
  private perm: number[];

  constructor(readonly size: number, readonly seed: number) {
    if (!Number.isInteger(size) || size <= 0) {
      throw new Error(`cannot draw from a dataset of ${size} samples`);
    }
    this.perm = epochPermutation(size, seed, 0);
  }

  /** The position of the next draw. */
  position(): DataCursor {
    return { ...this.cursor };
  }

  /** Continue from a saved position. */
  seek(c: DataCursor): void {
    if (
      !Number.isInteger(c.epoch) || c.epoch < 0 ||
      !Number.isInteger(c.offset) ||
      c.offset < 0 || c.offset > this.size
    ) {
      throw new Error(
        `data cursor ${
          JSON.stringify(c)
        } does not fit a dataset of ${this.size} samples (was the training data changed since the checkpoint?)`,
      );
    }
    this.cursor = { ...c };
    this.perm = epochPermutation(this.size, this.seed, c.epoch);
  }

  /** The sample index at the cursor, without moving. */
  peek(): number {
    if (this.cursor.offset >= this.size) this.nextEpoch();
    return this.perm[this.cursor.offset];
  }

  /** The sample index at the cursor; moves the cursor one sample on. */
  next(): number {
    const i = this.peek();
    this.cursor.offset++;
    return i;
  }

  /** `count` consecutive draws. */
  take(count: number): number[] {
    return Array.from({ length: count }, () => this.next());
  }

  private nextEpoch(): void {
    this.cursor = { epoch: this.cursor.epoch + 1, offset: 0 };
    this.perm = epochPermutation(this.size, this.seed, this.cursor.epoch);
  }
}
