/** Shared record types for the detection data contract (see design §3). */
import type { Xyxy } from "../coord/pixels.ts";

/** One ground-truth object after validation: bins 0..999, x1<=x2, y1<=y2. */
export interface GtObject {
  desc: string;
  /** [x1, y1, x2, y2] in coord bins 0..999. */
  bbox_2d: Xyxy;
}

/** One validated JSONL record. */
export interface DetectionRecord {
  /** Absolute image paths (resolved relative to the JSONL file). */
  images: string[];
  width: number;
  height: number;
  objects: GtObject[];
  /** Where the record came from, for error messages: `file:line`. */
  source: string;
}
