/**
 * The report as a person sees it: headless Chromium (Debian's `chromium`)
 * opens report.html from disk through playwright-core; the page must render
 * without console errors or network requests, every image must decode, and
 * a screenshot of the overlays must show the three box colours.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { decodePng } from "../../../trainer/data/png.ts";
import { OVERLAY_COLOURS } from "../../../trainer/eval/mod.ts";
import { writeRunReport } from "../../../trainer/report/mod.ts";
import { makeRunFolder } from "./fixture.ts";

const CHROMIUM = Deno.env.get("STAGE2_CHROMIUM") ?? "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
// CI installs chromium and sets this, so a missing browser fails there.
const required = Deno.env.get("STAGE2_REQUIRE_CHROMIUM") === "1";
const skip = !haveChromium && !required;
const NAME =
  "report.html renders in headless Chromium: no console errors, no requests, images decoded, overlay colours on screen";

if (skip) {
  console.warn(
    `\n!!! ${CHROMIUM} not found: the browser test of report.html is IGNORED.\n!!! Install it with \`apt-get install -y chromium\` (CI does, and sets STAGE2_REQUIRE_CHROMIUM=1).\n`,
  );
}

const hex = (c: string) =>
  [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

Deno.test({
  name: skip
    ? `${NAME} (IGNORED: ${CHROMIUM} not installed; apt-get install -y chromium)`
    : NAME,
  ignore: skip,
  // playwright keeps internal timers and pipes across the launch
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.ok(haveChromium, `${CHROMIUM} is required here but not installed`);
    const dir = await Deno.makeTempDir({ prefix: "stage2-browser-" });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--force-color-profile=srgb",
      ],
    });
    try {
      const records = await makeRunFolder(dir);
      const path = await writeRunReport(dir);
      const page = await browser.newPage({
        viewport: { width: 1200, height: 900 },
      });
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") {
          problems.push(`console ${m.type()}: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e}`));
      page.on("requestfailed", (r) => problems.push(`failed: ${r.url()}`));
      page.on("request", (r) => {
        if (!/^(data|file):/.test(r.url())) {
          problems.push(`network request: ${r.url()}`);
        }
      });
      await page.goto(`file://${path}`, { waitUntil: "load" });
      // evaluated in the page (a string: this file is not type-checked with DOM types)
      const images = await page.evaluate(
        `[...document.images].map((i) => ({ alt: i.alt,
          ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0 }))`,
      ) as { alt: string; ok: boolean }[];
      assert.equal(images.length, 4 + records.length);
      assert.deepEqual(
        images.filter((i) => !i.ok),
        [],
        "images that did not load",
      );
      assert.match(await page.title(), /stage2 run report/);
      assert.deepEqual(problems, []);

      // the overlays on screen carry the three box colours
      const shot = decodePng(
        await page.locator("#overlays .overlays").screenshot({
          path: join(dir, "overlays.png"),
        }),
      );
      const count = (c: string) => {
        const [r, g, b] = hex(c);
        let n = 0;
        for (let i = 0; i < shot.rgb.length; i += 3) {
          if (
            Math.abs(shot.rgb[i] - r) <= 3 &&
            Math.abs(shot.rgb[i + 1] - g) <= 3 &&
            Math.abs(shot.rgb[i + 2] - b) <= 3
          ) n++;
        }
        return n;
      };
      for (const [name, c] of Object.entries(OVERLAY_COLOURS)) {
        assert.ok(
          count(c) > 200,
          `${name} (${c}) pixels on screen: ${count(c)}`,
        );
      }
      // and the loss chart is drawn, not blank: many non-white pixels
      const chart = decodePng(
        await page.locator("#curves img").first().screenshot(),
      );
      let ink = 0;
      for (let i = 0; i < chart.rgb.length; i += 3) {
        if (chart.rgb[i] + chart.rgb[i + 1] + chart.rgb[i + 2] < 600) ink++;
      }
      assert.ok(ink > 2000, `non-white chart pixels: ${ink}`);
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
