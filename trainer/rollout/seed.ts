/**
 * Rollout seeding. The base seed of an optimizer step is
 * `(training_seed + global_step * 1000003) & 0x7FFFFFFF`, computed with
 * BigInt so it matches Python's arbitrary-precision integers for any step:
 * a plain JS `*` loses exactness past 2^53 and `&` would truncate to int32.
 */

import { faultActive } from "../common/faults.ts";

const MASK31 = 0x7FFFFFFFn;
const STEP_MULT = 1000003n;

function exactInt(v: number | bigint, what: string): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v)) {
    throw new RangeError(`${what} must be a safe integer, got ${v}`);
  }
  return BigInt(v);
}

/**
 * `rollout_seed_base = (trainingSeed + globalStep * 1000003) & 0x7FFFFFFF`,
 * identical to Python for every integer input (negative seeds included:
 * BigInt `&` is two's complement on unbounded integers, like Python's).
 *
 * @example
 * deriveRolloutSeedBase(42, 0); // 42
 * deriveRolloutSeedBase(42, 3); // 3000051
 */
export function deriveRolloutSeedBase(
  trainingSeed: number | bigint,
  globalStep: number | bigint,
): number {
  const seed = exactInt(trainingSeed, "training seed");
  const step = exactInt(globalStep, "global step");
  if (step < 0n) throw new RangeError(`global step must be >= 0, got ${step}`);
  if (faultActive("seed-formula-wrong")) return Number((seed + step) & MASK31);
  return Number((seed + step * STEP_MULT) & MASK31);
}

/**
 * Seed of the rollout request at `requestIndex` (its 0-based position in the
 * step's rollout batch, counted across the accumulation window's
 * micro-batches in order): `(seedBase + requestIndex) & 0x7FFFFFFF`.
 * Consecutive steps' bases differ by 1000003, so seeds of different steps
 * cannot collide for any batch smaller than that.
 *
 * @example
 * deriveRequestSeed(deriveRolloutSeedBase(42, 3), 2); // 3000053
 */
export function deriveRequestSeed(
  seedBase: number,
  requestIndex: number,
): number {
  if (!Number.isSafeInteger(seedBase) || seedBase < 0) {
    throw new RangeError(`seed base must be a non-negative integer`);
  }
  if (!Number.isSafeInteger(requestIndex) || requestIndex < 0) {
    throw new RangeError(
      `request index must be a non-negative integer, got ${requestIndex}`,
    );
  }
  return Number((BigInt(seedBase) + BigInt(requestIndex)) & MASK31);
}
