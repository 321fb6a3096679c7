/**
 * JSONL loader for the detection record contract (design §3):
 *
 *   {"images": ["img/0001.png"], "width": 128, "height": 128,
 *    "objects": [{"desc": "red circle", "bbox_2d": [10, 20, 40, 50]}]}
 *
 * Geometry units. A record may say `"coord_mode": "pixel"` or
 * `"coord_mode": "bins"`. Without it, a record whose boxes are written as
 * `<|coord_k|>` strings is in bins and every other record is in pixels; a
 * record mixing tokens and plain numbers must say which it means.
 * - pixel: numbers in [0, W-1] / [0, H-1] (pixel centres, inclusive edges),
 *   converted with `pixelBoxToBins` (x1/y1 round down, x2/y2 round up).
 * - bins: `<|coord_k|>` strings or numbers, coerced with `coerceGtBin`
 *   (`int(round(float(v)))`), each in [0, 999].
 *
 * Every record is validated; the first problem is thrown as a `DataError`
 * whose one-line message names `file:line`, the object index and the key.
 * Records and objects are strict: an unknown key (a typo such as
 * `"coordmode"` would otherwise silently read bins as pixels) is an error.
 * Nothing is converted or repaired beyond the unit conversion above. A
 * UTF-8 byte-order mark at the start of the file is ignored.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { coerceGtBin, parseCoordToken } from "../coord/codec.ts";
import { pixelBoxToBins, type Xyxy } from "../coord/pixels.ts";
import { didYouMean, InputError } from "../errors.ts";
import { checkPngFile } from "./png.ts";
import type { DetectionRecord, GtObject } from "./types.ts";

/** A data validation failure (exit 2); `message` is the full one-line report. */
export class DataError extends InputError {
  constructor(readonly where: string, readonly detail: string) {
    super(`${where}: ${detail}`);
    this.name = "DataError";
  }
}

/** Geometry keys that are recognised but not allowed in bbox-only v1. */
const OTHER_GEOMETRY_KEYS = [
  "poly",
  "polygon",
  "point",
  "points",
  "line",
  "quad",
  "mask",
  "segmentation",
  "keypoints",
];
const GEOMETRY_KEYS = ["bbox_2d", ...OTHER_GEOMETRY_KEYS];
const OBJECT_KEYS = ["desc", "bbox_2d"];
const RECORD_KEYS = ["images", "width", "height", "objects", "coord_mode"];

export interface LoadJsonlOptions {
  /**
   * Check every image up front (default true): the file is a PNG, is not
   * truncated, is within the pixel limit and has the declared size. Reads
   * only headers, so a bad image fails before training starts.
   */
  checkImages?: boolean;
}

/** Load and validate every record of a JSONL file. Blank lines are skipped. */
export async function loadJsonl(
  path: string,
  opts: LoadJsonlOptions = {},
): Promise<DetectionRecord[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new DataError(
      path,
      `cannot read JSONL file: ${(e as Error).message}`,
    );
  }
  const records = parseJsonlText(text, path);
  if (opts.checkImages ?? true) await checkRecordImages(records);
  return records;
}

/**
 * Parse and validate JSONL text. `path` names the file in errors and is the
 * base for relative image paths.
 */
export function parseJsonlText(text: string, path: string): DetectionRecord[] {
  const base = dirname(resolve(path));
  const out: DetectionRecord[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "") continue;
    const where = `${path}:${i + 1}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      throw new DataError(where, `bad JSON line (${(e as Error).message})`);
    }
    out.push(validateRecord(raw, where, base));
  }
  return out;
}

/** Validate one parsed record. `where` is `file:line`; `baseDir` resolves images. */
export function validateRecord(
  raw: unknown,
  where: string,
  baseDir: string,
): DetectionRecord {
  const fail = (detail: string): never => {
    throw new DataError(where, detail);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail(`record must be a JSON object, got ${kindOf(raw)}`);
  }
  const rec = raw as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (!RECORD_KEYS.includes(k)) {
      fail(
        `unknown key ${JSON.stringify(k)}${
          didYouMean(k, RECORD_KEYS)
        }; allowed keys: ${RECORD_KEYS.join(", ")}`,
      );
    }
  }
  const width = checkSize(rec, "width", fail);
  const height = checkSize(rec, "height", fail);

  const images = rec.images;
  if (images === undefined) {
    fail(`missing "images" (a list with one image path)`);
  }
  if (!Array.isArray(images) || images.length === 0) {
    fail(
      `"images" must be a non-empty list of image paths, got ${
        JSON.stringify(images)
      }`,
    );
  }
  const imgs = images as unknown[];
  if (imgs.length !== 1) {
    fail(
      `"images" has ${imgs.length} entries; bbox-only v1 takes exactly one image per record`,
    );
  }
  if (typeof imgs[0] !== "string" || imgs[0].trim() === "") {
    fail(
      `images[0] must be a non-empty path string, got ${
        JSON.stringify(imgs[0])
      }`,
    );
  }
  const image = imgs[0] as string;

  const mode = rec.coord_mode;
  if (mode !== undefined && mode !== "pixel" && mode !== "bins") {
    fail(`"coord_mode" must be "pixel" or "bins", got ${JSON.stringify(mode)}`);
  }

  const objects = rec.objects;
  if (objects === undefined) fail(`missing "objects" (a list, may be empty)`);
  if (!Array.isArray(objects)) {
    fail(`"objects" must be a list, got ${kindOf(objects)}`);
  }
  const objs = objects as unknown[];
  // Which objects write coord tokens and which plain numbers decides the
  // units when `coord_mode` is absent; a record mixing both is ambiguous.
  const boxValues = objs.map((o) =>
    o !== null && typeof o === "object" &&
      Array.isArray((o as Record<string, unknown>).bbox_2d)
      ? (o as Record<string, unknown>).bbox_2d as unknown[]
      : []
  );
  const isToken = (v: unknown) =>
    typeof v === "string" && parseCoordToken(v.trim()) !== undefined;
  const usesTokens = boxValues.some((b) => b.some(isToken));
  if (mode === undefined && usesTokens) {
    const j = boxValues.findIndex((b) => b.some((v) => typeof v === "number"));
    if (j >= 0) {
      fail(
        `objects[${j}]: bbox_2d mixes plain numbers with <|coord_k|> tokens used in this record; add "coord_mode": "bins" or "pixel" to say which the numbers are`,
      );
    }
  }
  const inBins = mode === "bins" || (mode === undefined && usesTokens);
  const gt: GtObject[] = objs.map((o, j) =>
    validateObject(
      o,
      `${where}: objects[${j}]`,
      inBins,
      width,
      height,
      mode === "pixel",
    )
  );
  return {
    images: [isAbsolute(image) ? image : resolve(baseDir, image)],
    width,
    height,
    objects: gt,
    source: where,
  };
}

function validateObject(
  raw: unknown,
  where: string,
  inBins: boolean,
  width: number,
  height: number,
  explicitPixel: boolean,
): GtObject {
  const fail = (detail: string): never => {
    throw new DataError(where, detail);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail(`object must be a JSON object, got ${kindOf(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  const geoms = Object.keys(obj).filter((k) => GEOMETRY_KEYS.includes(k));
  if (geoms.length > 1) {
    fail(
      `has ${geoms.length} geometries (${
        geoms.join(", ")
      }); exactly one bbox_2d is allowed`,
    );
  }
  if (geoms.length === 1 && geoms[0] !== "bbox_2d") {
    fail(
      `"${
        geoms[0]
      }" geometry is not supported (bbox-only v1): filter polygons and other non-box geometry out upstream`,
    );
  }
  for (const k of Object.keys(obj)) {
    if (!OBJECT_KEYS.includes(k)) {
      fail(
        `unknown key ${JSON.stringify(k)}${
          didYouMean(k, OBJECT_KEYS)
        }; allowed keys: ${OBJECT_KEYS.join(", ")}`,
      );
    }
  }
  if (geoms.length === 0) fail(`missing "bbox_2d"`);
  const desc = obj.desc;
  if (desc === undefined) fail(`missing "desc"`);
  if (typeof desc !== "string") {
    fail(`"desc" must be a string, got ${kindOf(desc)}`);
  }
  if ((desc as string).trim() === "") fail(`"desc" is empty`);

  const box = obj.bbox_2d;
  if (!Array.isArray(box) || box.length !== 4) {
    fail(
      `bbox_2d must be a list of 4 values [x1, y1, x2, y2], got ${
        JSON.stringify(box)
      }`,
    );
  }
  const vals = box as unknown[];
  let bins: Xyxy;
  if (inBins) {
    bins = vals.map((v, i) => {
      try {
        return coerceGtBin(v);
      } catch (e) {
        return fail(
          `bbox_2d[${i}]: ${(e as Error).message} (bins mode: 0..999)`,
        );
      }
    }) as Xyxy;
  } else {
    const px = vals.map((v, i) => {
      if (
        typeof v === "string" && parseCoordToken(v.trim()) !== undefined &&
        explicitPixel
      ) {
        fail(
          `bbox_2d[${i}] is a coord token ${v} but the record says "coord_mode": "pixel"`,
        );
      }
      if (typeof v !== "number" || !Number.isFinite(v)) {
        fail(`bbox_2d[${i}] must be a number, got ${JSON.stringify(v)}`);
      }
      const lim = (i % 2 === 0 ? width : height) - 1;
      if ((v as number) < 0 || (v as number) > lim) {
        fail(
          `bbox out of range: bbox_2d[${i}] = ${v} is outside [0, ${lim}] (pixel coordinates run 0..${
            i % 2 === 0 ? "width" : "height"
          }-1)`,
        );
      }
      return v as number;
    }) as Xyxy;
    checkOrder(px, fail);
    bins = pixelBoxToBins(px, width, height);
  }
  checkOrder(bins, fail);
  return { desc: desc as string, bbox_2d: bins };
}

function checkOrder(b: Xyxy, fail: (d: string) => never): void {
  if (b[2] < b[0]) fail(`bbox_2d x2 (${b[2]}) < x1 (${b[0]})`);
  if (b[3] < b[1]) fail(`bbox_2d y2 (${b[3]}) < y1 (${b[1]})`);
}

function checkSize(
  rec: Record<string, unknown>,
  key: "width" | "height",
  fail: (d: string) => never,
): number {
  const v = rec[key];
  if (v === undefined) {
    fail(`missing "${key}" (image ${key} in pixels is required)`);
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object"
    ? "an object"
    : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Header check of every record's image (`checkPngFile`), a few files at a
 * time; the first bad record in file order is reported, with the record's
 * `file:line` and the image path in one line.
 */
export async function checkRecordImages(
  records: readonly DetectionRecord[],
): Promise<void> {
  const BATCH = 16;
  for (let i = 0; i < records.length; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    const results = await Promise.allSettled(batch.map(checkRecordImage));
    const bad = results.find((r) => r.status === "rejected");
    if (bad) throw (bad as PromiseRejectedResult).reason;
  }
}

async function checkRecordImage(r: DetectionRecord): Promise<void> {
  const img = r.images[0];
  let info;
  try {
    info = await checkPngFile(img);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(r.source, `image not found: ${img}`);
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new DataError(r.source, `image ${img} is a folder, not a file`);
    }
    throw new DataError(r.source, (e as Error).message);
  }
  checkImageSize(r, info);
}

/**
 * Throw when an image is not the width x height its record declares: boxes
 * were converted with the declared size, so another size is an error, not
 * a rescale.
 */
export function checkImageSize(
  record: DetectionRecord,
  img: { width: number; height: number },
): void {
  if (img.width !== record.width || img.height !== record.height) {
    throw new DataError(
      record.source,
      `image ${
        record.images[0]
      } is ${img.width}x${img.height} but the record says width=${record.width}, height=${record.height}`,
    );
  }
}
