/**
 * Seeded random streams whose state is saved in `trainer_state.json`, so a
 * resumed run draws exactly the numbers the uninterrupted run would have.
 * Generator: xoroshiro128+ from the maintained `pure-rand` package (its state
 * is four int32s, trivially serializable).
 */
import {
  xoroshiro128plus,
  xoroshiro128plusFromState,
} from "pure-rand/generator/xoroshiro128plus";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

/** A stateful generator with a JSON-serializable state. */
export class Rng {
  private constructor(private gen: RandomGenerator) {}

  /** A generator seeded from an integer (any 32-bit value). */
  static fromSeed(seed: number): Rng {
    return new Rng(xoroshiro128plus(seed | 0));
  }

  /** Rebuild from `state()`; throws on a state of the wrong shape. */
  static fromState(state: readonly number[]): Rng {
    if (
      !Array.isArray(state) || state.length !== 4 ||
      !state.every((v) => Number.isInteger(v))
    ) {
      throw new Error(
        `RNG state must be 4 integers, got ${JSON.stringify(state)}`,
      );
    }
    return new Rng(xoroshiro128plusFromState(state));
  }

  state(): number[] {
    return [...this.gen.getState()];
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return uniformFloat64(this.gen);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return uniformInt(this.gen, lo, hi);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

/**
 * Mixes integers into one 32-bit seed (the splitmix32 finalizer), so streams
 * derived from (training seed, purpose, epoch) do not overlap in practice.
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h | 0;
}

/** Named streams, all derived from one training seed, saved and restored together. */
export class RngStreams {
  private streams = new Map<string, Rng>();

  constructor(readonly seed: number) {}

  /** The stream called `name`, created from (seed, name) on first use. */
  get(name: string): Rng {
    let r = this.streams.get(name);
    if (!r) {
      let h = 0;
      for (const ch of name) h = Math.imul(h, 31) + ch.charCodeAt(0) | 0;
      r = Rng.fromSeed(mixSeed(this.seed, h));
      this.streams.set(name, r);
    }
    return r;
  }

  state(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [k, v] of [...this.streams].sort(([a], [b]) => a < b ? -1 : 1)) {
      out[k] = v.state();
    }
    return out;
  }

  restore(state: Record<string, number[]>): void {
    this.streams.clear();
    for (const [k, v] of Object.entries(state)) {
      this.streams.set(k, Rng.fromState(v));
    }
  }
}
