/** Record image loading: decode and check the size the record declares. */
import { InputError } from "../errors.ts";
import { checkImageSize, DataError } from "./jsonl.ts";
import { readPng, type RgbImage } from "./png.ts";
import type { DetectionRecord } from "./types.ts";
import {
  type PreprocessedImage,
  preprocessImage,
  type VisionPreprocessConfig,
} from "./vision.ts";

/** Decode a record's image and check it has the size the record declares. */
export async function loadRecordImage(
  record: DetectionRecord,
): Promise<RgbImage> {
  const path = record.images[0];
  let img: RgbImage;
  try {
    img = await readPng(path);
  } catch (e) {
    if (e instanceof InputError) {
      throw new DataError(record.source, e.message);
    }
    throw e;
  }
  checkImageSize(record, img);
  return img;
}

/** Decode + Qwen3-VL preprocess in one call. */
export async function loadAndPreprocess(
  record: DetectionRecord,
  config: Partial<VisionPreprocessConfig> = {},
): Promise<PreprocessedImage> {
  const img = await loadRecordImage(record);
  return preprocessImage(img.rgb, img.height, img.width, config);
}
