// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * Word cues that tell a coordinate normalization apart from the many other
 * reasons code and text divide or multiply by 1000 (milliseconds, kilobytes,
 * "12k samples", row strides). Identifiers and sentences are reduced to
 * lower-case words and intersected with these sets.
 */

/**
 * Split identifiers and text into lower-case words (camelCase, snake_case).
 * `top_k`/`topK`/`top-p` stay one word (`topk`, `topp`): they are sampling
 * counts, not a top edge and a bin index.
 */
export function words(text: string): string[] {
  const out: string[] = [];
  const spaced = text
    .replace(
      /(?<![A-Za-z0-9])top[_-]?([kp])(?![a-z])/gi,
      (_, c: string) => `top${c.toLowerCase()}`,
    )
    .replace(
      /(?<=[a-z0-9])Top[_-]?([KkPp])(?![a-z])/g,
      (_, c: string) => `_top${c.toLowerCase()}`,
    )
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2");
  for (const w of spaced.split(/[^A-Za-z0-9]+/)) {
    if (!w) continue;
    const lw = w.toLowerCase();
    out.push(lw);
    // `box2`, `t0` also count as `box`, `t`; `timings` as `timing`.
    const stem = lw.replace(/\d+$/, "");
    if (stem && stem !== lw) out.push(stem);
    if (/^[a-z]{4,}s$/.test(lw) && !lw.endsWith("ss")) {
      out.push(lw.slice(0, -1));
    }
  }
  return out;
}

const set = (s: string) => new Set(s.trim().split(/\s+/));

/** Operands that are times: `elapsed * 1000` is milliseconds, not a bin. */
export const TIME = set(`
  ms msec msecs milli millis millisecond milliseconds sec secs second seconds
  elapsed time times timer timing duration durations dur timeout timeouts
  latency latencies timestamp timestamps ts now perf monotonic clock delay
  interval wait sleep epoch dt tic toc runtime walltime minute minutes hour
  hours date settimeout setinterval usec usecs micros nanos ns hz khz fps
  deadline ttl age expires expiry
`);

/**
 * Units: whatever else an operand is, a 1000 next to these converts units
 * (`rss_bytes / 1000` kB, `median_px / 1000 / 1000` megapixels).
 */
export const UNIT = set(`
  bytes byte kb kib mb mib gb gib kbps mbps bit bits memory mem rss heap
  kilobyte kilobytes megabyte megabytes gigabyte gigabytes
  megapixel megapixels mpx kpx meters meter metres metre mm cm km um nm
  micron microns kg gram grams price cents dollars usd
`);

/**
 * Counts and non-coordinate quantities: 1000 is a multiplier or a count
 * there (`n / 1000` thousands, `ceil(top_k * 1000)` candidates).
 */
export const COUNT = set(`
  length len count counts counter num n total numel stride strides shape
  batch steps step samples sample tokens vocab vocabulary topk topp
  candidates candidate params parameters flops gflops tflops cost loss lr
  epochs iters iterations seed seeds percent pct permille mille rate id ids
  port score scores conf confidence prob probs probability logit logits
  weight weights
`);

/** Loop indices: `i * 1000 + k` is a row stride unless coordinates join. */
export const INDEX = set(`i j idx index indices row rows col cols`);

/** Words that make an operand or sentence about coordinates and bins. */
export const COORD = set(`
  x y xs ys xy cx cy xc yc x0 y0 x1 y1 x2 y2 px py w h wh width height box boxes bbox
  bboxes bb xyxy xywh bin bins binned coord coords coordinate coordinates
  pt pts point points grid raster px pixel pixels norm normed normalized
  normalised normalize normalise decode decoded decodes decoding encode
  encoded encodes encoding dequant quant quantize quantized k left top
  right bottom center centre img image gt pred canvas scale extent extents
  shift offset tol tolerance
`);

/**
 * Coordinate words that are also generic names (`k` is a bin, a loop
 * counter or a top-k count): an operand carrying only these is settled by
 * what its names were bound to.
 */
export const WEAK_COORD = set(`k`);

/** Names that declare a normalization constant: `scale = 1000`. */
export const NORM_NAME = set(`
  scale scales norm normalize normalise normalizer normaliser normalization
  normalisation divisor denom denominator quant quantization
`);

/** Names of tolerances and distances: `tol = 2 / 1000`. */
export const TOLERANCE = set(`
  tol tols tolerance atol rtol eps epsilon margin shift dist distance delta
  err error diff thresh threshold slack jitter abs
`);

/** Names of expected values in tests: `expected = k / 1000`. */
export const EXPECT = set(`expected expect want wanted golden truth`);

export function hits(ws: Iterable<string>, cue: Set<string>): string[] {
  const out: string[] = [];
  for (const w of ws) if (cue.has(w)) out.push(w);
  return out;
}

export function any(ws: Iterable<string>, cue: Set<string>): boolean {
  for (const w of ws) if (cue.has(w)) return true;
  return false;
}
