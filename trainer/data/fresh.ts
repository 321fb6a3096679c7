/**
 * Fresh synthetic training data: every draw of the training loop gets an
 * image it has never seen. Record `i` is sample `i` of the synthetic train
 * stream (`synthSampleAt(seed, "train", i)`), a pure function of the seed
 * and the index, so the loop's seeded data order and its resumable cursor
 * make the whole stream a pure function of (seed, step) and a resumed run
 * sees exactly the images an uninterrupted one would.
 *
 * Layouts (the answers) are computed up front because they are cheap and
 * the loop needs every sample's token length before drawing; pixels are
 * rendered only when a sample is drawn, and nothing is written to disk.
 */
import type { RgbImage } from "./png.ts";
import {
  SYNTH_DEFAULTS,
  synthLayoutAt,
  type SynthObject,
  type SynthOptions,
  synthSampleAt,
} from "./synth.ts";
import { validateRecord } from "./jsonl.ts";
import type { DetectionRecord } from "./types.ts";

/** The virtual image path of fresh sample `i` (shown in error messages). */
export function freshImageName(seed: number, i: number): string {
  return `synth://train/${seed}/${i}`;
}

/** An endless-in-principle synthetic train stream, materialized up to `count`. */
export class FreshSynthData {
  readonly records: DetectionRecord[];
  readonly opts: SynthOptions;

  /**
   * @param count how many distinct draws the run can make (the loop's
   *   data order covers them once before repeating).
   */
  constructor(
    readonly seed: number,
    count: number,
    opts: Partial<SynthOptions> = {},
  ) {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(
        `fresh synthetic data needs count >= 1, got ${count}`,
      );
    }
    this.opts = { ...SYNTH_DEFAULTS, ...opts };
    this.records = Array.from({ length: count }, (_, i) =>
      layoutRecord(
        synthLayoutAt(seed, "train", i, this.opts),
        this.opts.imageSize,
        freshImageName(seed, i),
      ));
  }

  /** The pixels of record `i` (equal to `synthSampleAt(seed, "train", i).image`). */
  image(i: number): RgbImage {
    if (!(i >= 0 && i < this.records.length)) {
      throw new RangeError(
        `fresh sample ${i} is outside 0..${this.records.length - 1}`,
      );
    }
    return synthSampleAt(this.seed, "train", i, this.opts).image;
  }
}

/** A validated record for a layout on an S x S image at a virtual path. */
function layoutRecord(
  objects: readonly SynthObject[],
  S: number,
  name: string,
): DetectionRecord {
  const record = validateRecord(
    {
      images: [name],
      width: S,
      height: S,
      objects: objects.map((o) => ({ desc: o.desc, bbox_2d: o.bbox })),
    },
    name,
    "/",
  );
  record.images = [name];
  return record;
}
