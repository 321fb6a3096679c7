/**
 * PNG <-> interleaved RGB uint8 via npm `pngjs`. Transparent pixels are
 * composited over white, as HF's `convert_rgb` does for RGBA inputs.
 * Palette and grey images are expanded by pngjs; 16-bit images are scaled
 * to 8 bits by pngjs (rounded), where Pillow keeps the high byte, so such
 * files may differ from HF's decode by one level.
 */
import pngjs from "pngjs";
import { Buffer } from "node:buffer";

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

/** Decode PNG bytes (any colour type / bit depth pngjs reads) to 8-bit RGB. */
export function decodePng(bytes: Uint8Array): RgbImage {
  const png = PNG.sync.read(
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  );
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
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
  try {
    return decodePng(bytes);
  } catch (e) {
    throw new Error(`cannot decode PNG ${path}: ${(e as Error).message}`);
  }
}
