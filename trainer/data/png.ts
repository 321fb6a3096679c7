/**
 * PNG <-> interleaved RGB uint8 via npm `pngjs`. Transparent pixels are
 * composited over white, as HF's `convert_rgb` does for RGBA inputs.
 * Palette and grey images are expanded by pngjs; 16-bit images are scaled
 * to 8 bits by pngjs (rounded), where Pillow keeps the high byte, so such
 * files may differ from HF's decode by one level.
 */
import pngjs from "pngjs";
import { Buffer } from "node:buffer";
import { InputError } from "../errors.ts";

const { PNG } = pngjs;

/** A decoded image: `rgb` is [height, width, 3] row-major. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Encode an RGB image [h, w, 3] as an 8-bit truecolour PNG. */
export function encodePngRgb(image: RgbImage): Uint8Array {
  const { width, height, rgb } = image;
  if (rgb.length !== width * height * 3) {
    throw new RangeError(
      `RGB buffer has ${rgb.length} bytes, expected ${
        width * height * 3
      } for ${width}x${height}`,
    );
  }
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  const out = PNG.sync.write(
    png,
    {
      colorType: 2,
      inputColorType: 2,
      inputHasAlpha: false,
    } as Parameters<typeof PNG.sync.write>[1],
  );
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Pixel-count limit checked from the header before any decoding: a small
 * file can declare a huge image (a "decompression bomb") whose decode would
 * take gigabytes. The value is Pillow's `Image.MAX_IMAGE_PIXELS` (about
 * 89.5 megapixels), the limit HF image loading applies.
 */
export const MAX_IMAGE_PIXELS = 89_478_485;

/** What a PNG header says, read without decoding. */
export interface PngInfo {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Names a non-PNG file by its magic bytes, for "is a JPEG, not a PNG". */
function sniffFormat(b: Uint8Array): string | null {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  if (starts(0xff, 0xd8, 0xff)) return "JPEG";
  if (starts(0x47, 0x49, 0x46, 0x38)) return "GIF";
  if (starts(0x42, 0x4d)) return "BMP";
  if (
    starts(0x52, 0x49, 0x46, 0x46) &&
    String.fromCharCode(...b.subarray(8, 12)) === "WEBP"
  ) return "WebP";
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) {
    return "TIFF";
  }
  return null;
}

/** Reads `n` bytes at `offset`, fewer at the end of the file. */
async function readAt(
  file: Deno.FsFile,
  offset: number,
  n: number,
): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}

/**
 * Checks a PNG's structure without decoding it: signature, IHDR size, the
 * pixel-count limit, and a walk over the chunk headers (8 bytes each, the
 * data skipped) that finds a truncated file. Throws `InputError` with a message
 * a user can act on ("is a JPEG file, not a PNG", "is truncated").
 *
 * @example
 * const { width, height } = await checkPngFile("img/0001.png");
 */
export async function checkPngFile(
  path: string,
  maxPixels = MAX_IMAGE_PIXELS,
): Promise<PngInfo> {
  const file = await Deno.open(path);
  try {
    const size = (await file.stat()).size;
    const info = pngHeader(await readAt(file, 0, 33), path, maxPixels);
    // Chunks: 4-byte length, 4-byte type, data, 4-byte CRC; IEND ends it.
    let pos = 8;
    for (;;) {
      const head = await readAt(file, pos, 8);
      if (head.length < 8) break;
      const len = new DataView(head.buffer).getUint32(0);
      const type = String.fromCharCode(...head.subarray(4, 8));
      pos += 12 + len;
      if (pos > size) break;
      if (type === "IEND") return info;
    }
    throw new InputError(
      `PNG ${path} is truncated (${size} bytes, no complete IEND chunk)`,
    );
  } finally {
    file.close();
  }
}

/** Parses signature + IHDR of `bytes` (at least 33 bytes for a valid PNG). */
function pngHeader(
  bytes: Uint8Array,
  path: string,
  maxPixels: number,
): PngInfo {
  if (!PNG_SIGNATURE.every((v, i) => bytes[i] === v)) {
    const fmt = sniffFormat(bytes);
    throw new InputError(
      fmt
        ? `${path} is a ${fmt} file, not a PNG; convert it to PNG (only PNG images are read)`
        : bytes.length < 8
        ? `${path} is not a PNG (${bytes.length} bytes)`
        : `${path} is not a PNG file (no PNG signature)`,
    );
  }
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 33 || type !== "IHDR") {
    throw new InputError(
      `PNG ${path} is truncated or damaged (no IHDR header)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16), height = view.getUint32(20);
  if (width === 0 || height === 0) {
    throw new InputError(
      `PNG ${path} declares an empty ${width}x${height} image`,
    );
  }
  if (width * height > maxPixels) {
    throw new InputError(
      `PNG ${path} declares ${width}x${height} = ${
        width * height
      } pixels, over the limit of ${maxPixels} (a decompression bomb or a wrong file); downscale it first`,
    );
  }
  return { width, height };
}

/**
 * Decode PNG bytes (any colour type / bit depth pngjs reads) to 8-bit RGB.
 * The header is checked first (`MAX_IMAGE_PIXELS`), so a bomb is refused
 * before any pixel buffer is allocated.
 */
export function decodePng(
  bytes: Uint8Array,
  where = "image",
  maxPixels = MAX_IMAGE_PIXELS,
): RgbImage {
  pngHeader(bytes, where, maxPixels);
  let png;
  try {
    png = PNG.sync.read(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    );
  } catch (e) {
    throw new InputError(
      `PNG ${where} is damaged or truncated (decoder: ${(e as Error).message})`,
    );
  }
  const { width, height, data } = png;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height * 4; i += 4, j += 3) {
    const a = data[i + 3];
    if (a === 255) {
      rgb[j] = data[i];
      rgb[j + 1] = data[i + 1];
      rgb[j + 2] = data[i + 2];
    } else {
      // alpha-composite over a white background, rounded to nearest
      for (let c = 0; c < 3; c++) {
        rgb[j + c] = Math.round((data[i + c] * a + 255 * (255 - a)) / 255);
      }
    }
  }
  return { width, height, rgb };
}

/** Read and decode a PNG file; errors name the path. */
export async function readPng(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new InputError(`cannot read image ${path}: ${(e as Error).message}`);
  }
  return decodePng(bytes, path);
}
