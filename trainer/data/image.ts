/** Record image loading: decode and check the size the record declares. */
import { DataError } from "./jsonl.ts";
import { readPng, type RgbImage } from "./png.ts";
import type { DetectionRecord } from "./types.ts";
import {
  type PreprocessedImage,
  preprocessImage,
  type VisionPreprocessConfig,
} from "./vision.ts";

/**
 * Decode a record's image. Boxes were converted with the record's
 * width/height, so an image of another size is an error, not a rescale.
 */
export async function loadRecordImage(
  record: DetectionRecord,
): Promise<RgbImage> {
  const path = record.images[0];
  let img: RgbImage;
  try {
    img = await readPng(path);
  } catch (e) {
    throw new DataError(record.source, (e as Error).message);
  }
  checkImageSize(record, img);
  return img;
}

/** Throw when `img` is not the width x height the record declares. */
export function checkImageSize(record: DetectionRecord, img: RgbImage): void {
  if (img.width !== record.width || img.height !== record.height) {
    throw new DataError(
      record.source,
      `image ${
        record.images[0]
      } is ${img.width}x${img.height} but the record says width=${record.width}, height=${record.height}`,
    );
  }
}

/** Decode + Qwen3-VL preprocess in one call. */
export async function loadAndPreprocess(
  record: DetectionRecord,
  config: Partial<VisionPreprocessConfig> = {},
): Promise<PreprocessedImage> {
  const img = await loadRecordImage(record);
  return preprocessImage(img.rgb, img.height, img.width, config);
}
