/**
 * Turns validated records into `RawSample`s: image decode + Qwen3-VL
 * preprocessing with the model's patch sizes, and the chat rendering.
 * Sample lengths are known before any image is decoded (the resize rule
 * fixes the patch grid from width/height alone), so packing can be checked
 * at start-up.
 */
import type { DetectionRecord } from "../data/types.ts";
import { loadAndPreprocess } from "../data/image.ts";
import type { RgbImage } from "../data/png.ts";
import {
  preprocessImage,
  smartResize,
  type VisionPreprocessConfig,
} from "../data/vision.ts";
import { renderChatSample } from "../tokenizer/chat.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { RawSample } from "../variant/contract.ts";

/** Patch sizes plus the resize bounds (`data.min_pixels` / `data.max_pixels`). */
export type SampleVision = Pick<
  VisionPreprocessConfig,
  "patchSize" | "temporalPatchSize" | "mergeSize" | "minPixels" | "maxPixels"
>;

/** `<|image_pad|>` count of a record's image, from its declared size. */
export function imagePadCount(
  record: DetectionRecord,
  v: SampleVision,
): number {
  const factor = v.patchSize * v.mergeSize;
  const [h, w] = smartResize(
    record.height,
    record.width,
    factor,
    v.minPixels,
    v.maxPixels,
  );
  return (h / v.patchSize) * (w / v.patchSize) / (v.mergeSize * v.mergeSize);
}

/** Decoded samples are cached up to this many; small datasets stay in memory. */
const CACHE_LIMIT = 4096;

/**
 * Where a store's pixels come from when they are not files:
 * `image(i)` renders record `i` (fresh synthetic data); `cache: false`
 * keeps drawn-once samples out of memory.
 */
export interface InMemoryImages {
  image(i: number): RgbImage;
  cache: boolean;
}

/** Lazily built, cached samples of one JSONL split. */
export class SampleStore {
  private cache = new Map<number, RawSample>();
  /** Prompt + answer tokens per record. */
  readonly lengths: number[];

  constructor(
    readonly records: DetectionRecord[],
    readonly tokenizer: Tokenizer,
    readonly vision: SampleVision,
    readonly images: InMemoryImages | null = null,
  ) {
    this.lengths = records.map((r) =>
      renderChatSample(tokenizer, {
        objects: r.objects,
        imagePadCount: imagePadCount(r, vision),
      }).inputIds.length
    );
  }

  get size(): number {
    return this.records.length;
  }

  async get(i: number): Promise<RawSample> {
    const hit = this.cache.get(i);
    if (hit) return hit;
    const record = this.records[i];
    const pre = {
      patchSize: this.vision.patchSize,
      temporalPatchSize: this.vision.temporalPatchSize,
      mergeSize: this.vision.mergeSize,
      minPixels: this.vision.minPixels,
      maxPixels: this.vision.maxPixels,
    };
    let img;
    if (this.images) {
      const rgb = this.images.image(i);
      img = preprocessImage(rgb.rgb, rgb.height, rgb.width, pre);
    } else img = await loadAndPreprocess(record, pre);
    const rendered = renderChatSample(this.tokenizer, {
      objects: record.objects,
      imagePadCount: img.mergedTokenCount,
    });
    const s: RawSample = {
      ...rendered,
      index: i,
      record,
      pixelValues: img.pixelValues,
      pixelShape: img.shape,
      imageGridThw: [img.gridThw],
    };
    if ((this.images?.cache ?? true) && this.cache.size < CACHE_LIMIT) {
      this.cache.set(i, s);
    }
    return s;
  }

  async getMany(indices: number[]): Promise<RawSample[]> {
    const out: RawSample[] = [];
    for (const i of indices) out.push(await this.get(i));
    return out;
  }
}
