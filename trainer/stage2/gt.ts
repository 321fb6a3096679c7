/**
 * Bbox-only v1 ground-truth guardrail. Stage-2 supervises boxes only, so any
 * other geometry in the ground truth is a data problem the user must fix
 * upstream; nothing here converts or repairs an object.
 */
import { coerceGtBin } from "../coord/codec.ts";
import type { Xyxy } from "../coord/pixels.ts";
import type { GtObject } from "../data/types.ts";

/** Anything with an `objects` list; `source` (`file:line`) names it in errors. */
export interface GtRecordLike {
  objects: unknown;
  source?: string;
}

const GEOMETRY_HINT =
  'Stage-2 AB (bbox-only v1) supports only "bbox_2d"; filter polygons and other geometries out of the dataset upstream';

/**
 * Validates and returns a record's ground truth as bbox-only objects: each has
 * a non-empty `desc` and exactly one geometry, `bbox_2d` with 4 values that
 * coerce (`int(round(float(v)))`, `<|coord_k|>` -> k) into [0, 999] with
 * x1 <= x2 and y1 <= y2. Throws an Error naming the record and the object on
 * the first violation.
 *
 * @example
 * extractGtBboxOnly({ source: "train.jsonl:3", objects: [
 *   { desc: "cat", bbox_2d: [10, 20, 300, "<|coord_400|>"] } ] });
 * // -> [{ desc: "cat", bbox_2d: [10, 20, 300, 400] }]
 */
export function extractGtBboxOnly(record: GtRecordLike): GtObject[] {
  const where = record.source ?? "record";
  if (!Array.isArray(record.objects)) {
    throw new Error(`${where}: "objects" must be a list of objects`);
  }
  return record.objects.map((raw, i) => {
    const name = `${where}: object ${i}`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new Error(`${name} is not a JSON object`);
    }
    const obj = raw as Record<string, unknown>;
    const desc = obj.desc;
    if (typeof desc !== "string" || desc.trim() === "") {
      throw new Error(`${name} needs a non-empty string "desc"`);
    }
    const label = `${name} ("${desc}")`;
    const geometry = Object.keys(obj).filter((k) => k !== "desc");
    const others = geometry.filter((k) => k !== "bbox_2d");
    if (others.length > 0) {
      throw new Error(
        `${label} has geometry/key ${
          others.map((k) => JSON.stringify(k)).join(", ")
        }; ${GEOMETRY_HINT}`,
      );
    }
    if (geometry.length === 0) {
      throw new Error(`${label} has no "bbox_2d"`);
    }
    const box = obj.bbox_2d;
    if (!Array.isArray(box) || box.length !== 4) {
      throw new Error(
        `${label}: "bbox_2d" must be a list of 4 values [x1, y1, x2, y2], got ${
          JSON.stringify(box)
        }`,
      );
    }
    const bins = box.map((v, j) => {
      try {
        return coerceGtBin(v);
      } catch (e) {
        throw new Error(
          `${label}: bbox_2d[${j}]: ${(e as Error).message}`,
        );
      }
    }) as Xyxy;
    if (bins[0] > bins[2] || bins[1] > bins[3]) {
      throw new Error(
        `${label}: bbox_2d ${
          JSON.stringify(bins)
        } is not ordered (need x1 <= x2 and y1 <= y2); fix the data, boxes are not reordered`,
      );
    }
    return { desc, bbox_2d: bins };
  });
}
