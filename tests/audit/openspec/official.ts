/**
 * The official OpenSpec CLI (npm `@fission-ai/openspec@1.13.2`) for
 * differential tests and the benchmark.
 *
 * Installed once with npm into a cache folder and then run with `node`
 * directly: `npx -y` costs ~1.7 s per call even when warm, `node bin` ~0.7 s.
 * The install goes to a temporary folder that is renamed into place, so
 * concurrent runs never see a half-installed package.
 */

export const OFFICIAL_VERSION = "1.13.2";

function cacheDir(): string {
  const explicit = Deno.env.get("STAGE2_OPENSPEC_CACHE");
  if (explicit) return explicit;
  const base = Deno.env.get("XDG_CACHE_HOME") ??
    `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/stage2/openspec-${OFFICIAL_VERSION}`;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

let binPromise: Promise<string> | undefined;

/** Path of the official CLI entry script, installing it on first use. */
export function officialBin(): Promise<string> {
  binPromise ??= install();
  return binPromise;
}

async function install(): Promise<string> {
  const dir = cacheDir();
  const bin = `${dir}/node_modules/@fission-ai/openspec/bin/openspec.js`;
  if (exists(bin)) return bin;
  const parent = dir.replace(/\/[^/]*$/, "");
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({
    dir: parent,
    prefix: ".openspec-install-",
  });
  const npm = new Deno.Command("npm", {
    args: [
      "install",
      "--prefix",
      tmp,
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      `@fission-ai/openspec@${OFFICIAL_VERSION}`,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  let res: Deno.CommandOutput;
  try {
    res = await npm.output();
  } catch (e) {
    throw new Error(
      `cannot run npm to install @fission-ai/openspec@${OFFICIAL_VERSION}: ${
        (e as Error).message
      }`,
    );
  }
  if (!res.success) {
    throw new Error(
      `npm install @fission-ai/openspec@${OFFICIAL_VERSION} failed: ${
        new TextDecoder().decode(res.stderr).trim()
      }`,
    );
  }
  try {
    await Deno.rename(tmp, dir);
  } catch {
    // Another run installed it first; ours is redundant.
    await Deno.remove(tmp, { recursive: true });
  }
  return bin;
}

export interface OfficialRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is JSON. */
  json?: unknown;
}

let isolatedHome: Promise<string> | undefined;
/** One empty config/data home per process, shared by every official run. */
const home =
  () => (isolatedHome ??= Deno.makeTempDir({ prefix: "openspec-home-" }));

/**
 * Environment for the official CLI: no telemetry or colour, and empty
 * config/data homes so a developer's global OpenSpec config or store
 * registry cannot change the verdicts under test.
 */
function isolatedEnv(isolated: string): Record<string, string> {
  return {
    OPENSPEC_TELEMETRY: "0",
    DO_NOT_TRACK: "1",
    NO_COLOR: "1",
    CI: "1",
    XDG_CONFIG_HOME: `${isolated}/config`,
    XDG_DATA_HOME: `${isolated}/data`,
  };
}

/** Run `openspec <args>` in `cwd` with telemetry off and no user config. */
export async function runOfficial(
  args: string[],
  cwd: string,
): Promise<OfficialRun> {
  const bin = await officialBin();
  const isolated = await home();
  const res = await new Deno.Command("node", {
    args: [bin, ...args],
    cwd,
    env: isolatedEnv(isolated),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(res.stdout);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return {
    code: res.code,
    stdout,
    stderr: new TextDecoder().decode(res.stderr),
    json,
  };
}

/**
 * Run many `openspec validate <args>` cases in one Node process (see
 * official_driver.mjs); results in case order.
 */
export async function runOfficialBatch(
  cases: { cwd: string; args: string[] }[],
): Promise<OfficialRun[]> {
  const bin = await officialBin();
  const pkg = bin.replace(/\/bin\/openspec\.js$/, "");
  const isolated = await home();
  const casesFile = `${isolated}/cases-${crypto.randomUUID()}.json`;
  await Deno.writeTextFile(casesFile, JSON.stringify(cases));
  const driver = new URL("./official_driver.mjs", import.meta.url).pathname;
  const res = await new Deno.Command("node", {
    args: [driver, pkg, casesFile],
    env: isolatedEnv(isolated),
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(casesFile);
  const stdout = new TextDecoder().decode(res.stdout);
  if (!res.success) {
    throw new Error(
      `official driver failed: ${new TextDecoder().decode(res.stderr)}`,
    );
  }
  const runs = JSON.parse(stdout.trim().split("\n").pop()!) as OfficialRun[];
  return runs.map((r) => {
    let json: unknown;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { ...r, json };
  });
}
