/**
 * Verdicts of `stage2 audit --run DIR --probe`: the measurements of
 * `trainer/selfcheck/probe.ts` (made on the run's latest checkpoint and its
 * replay batch) held to their tolerances. Imports no TF.js.
 */
import type { ProbeMeasurements } from "../trainer/selfcheck/probe.ts";

/** Tolerances, relative to the baseline's largest |logit| (soft rows: to the row norm). */
export const PROBE_TOLERANCE = {
  /** Masked keys add exp(-huge) = 0 exactly: other segments must not move. */
  isolation: 1e-6,
  /** Cached decode runs other kernels (rotation matrix, one query row). */
  cache: 1e-4,
  /** Same rows, same kernels after the embedding lookup. */
  embedsPath: 1e-6,
  /** float32 softmax @ E against the float64 recomputation. */
  softRows: 1e-4,
};

export interface ProbeVerdict {
  name: "segment-isolation" | "kv-cache" | "embeds-path" | "soft-rows";
  /** What holds when the probe passes. */
  claim: string;
  ok: boolean;
  /** The measured numbers, in one line. */
  detail: string;
}

export interface ProbeReport {
  checkpoint: string;
  batch: ProbeMeasurements["batch"];
  probes: ProbeVerdict[];
  ok: boolean;
}

const e = (x: number) => x.toExponential(2);

/** Judges probe measurements. */
export function judgeProbes(m: ProbeMeasurements): ProbeReport {
  const scale = Math.max(m.logitScale, 1e-30);
  const iso = m.isolation;
  const isoOut = Math.max(0, ...iso.map((x) => x.outside));
  const isoIn = Math.min(...iso.map((x) => x.inside));
  const cacheDiff = Math.max(0, ...m.cache.map((c) => c.maxDiff));
  const cacheTol = PROBE_TOLERANCE.cache * scale;
  const greedyOk = m.cache.every((c) =>
    c.greedyCached === c.greedyUncached || c.top2Gap <= 2 * c.maxDiff
  );
  const soft = m.softRows;
  const softDiff = Math.max(0, ...soft.map((s) => s.maxRelDiff));
  const softChanged = soft.reduce((n, s) => n + s.changedOutside, 0);
  const probes: ProbeVerdict[] = [
    {
      name: "segment-isolation",
      claim:
        "(a) perturbing one packed segment's tokens leaves every other segment's logits unchanged",
      ok: iso.length > 0 && isoOut <= PROBE_TOLERANCE.isolation * scale &&
        isoIn > 0,
      detail: iso.length === 0
        ? "no row of the replay batch packs two segments"
        : `${iso.length} segment(s) perturbed: max |change| outside ${
          e(isoOut)
        }, inside >= ${e(isoIn)} (logit scale ${e(scale)})`,
    },
    {
      name: "kv-cache",
      claim: "(b) KV-cached greedy decode steps equal the uncached forward",
      ok: m.cache.length > 0 && cacheDiff <= cacheTol && greedyOk,
      detail: `${m.cache.length} cached step(s): max |logit diff| ${
        e(cacheDiff)
      } (tolerance ${e(cacheTol)}), greedy token ${
        greedyOk ? "equal" : "differs"
      }`,
    },
    {
      name: "embeds-path",
      claim:
        "(c) inputs_embeds = embedTokens(ids) gives the logits of the input_ids path",
      ok: m.embedsPath.maxDiff <= PROBE_TOLERANCE.embedsPath * scale,
      detail: `max |logit diff| ${e(m.embedsPath.maxDiff)}`,
    },
    {
      name: "soft-rows",
      claim:
        "(d) soft rows of pass k equal softmax(z[p-1, coord_ids] / T) @ E(coord_ids) from pass k-1's logits; other rows stay the base embedding",
      ok: soft.length > 0 && soft.every((s) => s.slots > 0) &&
        softDiff <= PROBE_TOLERANCE.softRows && softChanged === 0,
      detail: `${soft.length} pass(es), ${
        soft[0]?.slots ?? 0
      } coord slots: max relative row diff ${
        e(softDiff)
      }, ${softChanged} other row(s) changed`,
    },
  ];
  return {
    checkpoint: m.checkpoint,
    batch: m.batch,
    probes,
    ok: probes.every((p) => p.ok),
  };
}

export function formatProbes(r: ProbeReport): string {
  const out = [
    `probes on ${r.checkpoint} with the replay batch of step ${r.batch.step} (${r.batch.rows} row(s) of ${r.batch.length} tokens, ${r.batch.segments} packed segments):`,
  ];
  const w = Math.max(...r.probes.map((p) => p.name.length));
  for (const p of r.probes) {
    out.push(`${p.ok ? "PASS" : "FAIL"} ${p.name.padEnd(w)}  ${p.detail}`);
    out.push(`     ${"".padEnd(w)}  ${p.claim}`);
  }
  out.push(r.ok ? "PASS: all probes hold" : "FAIL: a probe failed");
  return out.join("\n");
}
