/**
 * The rollout seed formula of design §2, re-derived here ON PURPOSE rather
 * than imported from the trainer (`trainer/rollout/seed.ts`): the audit
 * checks the seeds the trainer logged, so sharing the trainer's
 * implementation would let a wrong formula check itself.
 * `tests/audit/trace/seed_test.ts` holds the two implementations equal.
 */

/**
 * `(trainingSeed + globalStep * 1000003) & 0x7FFFFFFF`, exact (BigInt, so
 * no 2^53 rounding and a 31-bit mask like Python's `&`).
 *
 * @example
 * expectedRolloutSeedBase(42, 3); // 3000051
 */
export function expectedRolloutSeedBase(
  trainingSeed: number,
  globalStep: number,
): number {
  return Number(
    (BigInt(trainingSeed) + BigInt(globalStep) * 1000003n) & 0x7FFFFFFFn,
  );
}

/**
 * Seed of the request at `index` of a step's rollout batch (counted across
 * the window's micro-batches in order): `(seedBase + index) & 0x7FFFFFFF`.
 *
 * @example
 * expectedRequestSeed(3000051, 2); // 3000053
 */
export function expectedRequestSeed(seedBase: number, index: number): number {
  return Number((BigInt(seedBase) + BigInt(index)) & 0x7FFFFFFFn);
}
