/**
 * Differential tests: the official `openspec validate` (1.13.2) and
 * `stage2 validate-spec` on the same trees must agree on exit codes,
 * verdicts, issue lists (level, path, message, order) and on every `line` the
 * official JSON carries. Every official call runs once, concurrently, before
 * the comparisons.
 */
import assert from "node:assert/strict";
import {
  runValidate,
  type ValidateOptions,
} from "../../../audit/openspec/mod.ts";
import { runOfficial, runOfficialBatch } from "./official.ts";

const CORPUS =
  new URL("../../fixtures/openspec/corpus", import.meta.url).pathname;
/** Project-local workflow schemas: tracked task globs, broken and cyclic schemas. */
const SCHEMAS =
  new URL("../../fixtures/openspec/schemas", import.meta.url).pathname;
const REPO = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");

interface Case {
  name: string;
  cwd: string;
  args: string[];
}

function toOptions(args: string[], cwd: string): ValidateOptions {
  const opts: ValidateOptions = { root: cwd };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--all") opts.all = true;
    else if (a === "--changes") opts.changes = true;
    else if (a === "--specs") opts.specs = true;
    else if (a === "--strict") opts.strict = true;
    else if (a === "--json") opts.json = true;
    else if (a === "--archived") opts.archived = true;
    else if (a === "--type") opts.type = args[++i] as "change" | "spec";
    else opts.item = a;
  }
  return opts;
}

type Json = Record<string, unknown>;
type JsonIssue = {
  level: string;
  path: string;
  message: string;
  line?: number;
};
type JsonItem = {
  id: string;
  type: string;
  valid: boolean;
  issues: JsonIssue[];
};

/** Drop timing and the absolute root; order items by (id, type). */
function normalize(doc: Json): Json {
  if (!Array.isArray(doc.items)) return doc;
  const items = (doc.items as JsonItem[]).map((
    { id, type, valid, issues },
  ) => ({
    id,
    type,
    valid,
    issues: issues.map(({ level, path, message }) => ({
      level,
      path,
      message,
    })),
  })).sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : a.type < b.type ? -1 : 1
  );
  return { items, summary: doc.summary, version: doc.version };
}

function linesOf(doc: Json): Map<string, (number | undefined)[]> {
  const out = new Map<string, (number | undefined)[]>();
  for (const it of (doc.items ?? []) as JsonItem[]) {
    out.set(
      `${it.type}/${it.id}`,
      it.issues.map((i) => i.line),
    );
  }
  return out;
}

const CASES: Case[] = [
  { name: "corpus --all", cwd: CORPUS, args: ["--all", "--json"] },
  {
    name: "corpus --all --strict",
    cwd: CORPUS,
    args: ["--all", "--strict", "--json"],
  },
  { name: "corpus --changes", cwd: CORPUS, args: ["--changes", "--json"] },
  {
    name: "corpus --specs --strict",
    cwd: CORPUS,
    args: ["--specs", "--strict", "--json"],
  },
  { name: "typo suggests ids", cwd: CORPUS, args: ["auht", "--json"] },
  {
    name: "unknown id, no suggestion needed",
    cwd: CORPUS,
    args: ["nope", "--type", "change", "--json"],
  },
  { name: "ambiguous id", cwd: CORPUS, args: ["shared-name", "--json"] },
  {
    name: "ambiguous id with --type spec",
    cwd: CORPUS,
    args: ["shared-name", "--type", "spec", "--json"],
  },
  { name: "namespace folder", cwd: CORPUS, args: ["mobile", "--json"] },
  { name: "nested spec id", cwd: CORPUS, args: ["platform/storage", "--json"] },
  {
    name: "single change --strict",
    cwd: CORPUS,
    args: ["scenario-loss", "--strict", "--json"],
  },
  { name: "single valid change", cwd: CORPUS, args: ["add-valid", "--json"] },
  {
    name: "single spec with duplicate report",
    cwd: CORPUS,
    args: ["no-scenario", "--json"],
  },
  { name: "human --all exit code", cwd: CORPUS, args: ["--all"] },
  {
    name: "human valid item exit code",
    cwd: CORPUS,
    args: ["modify-valid", "--strict"],
  },
  { name: "custom schemas --all", cwd: SCHEMAS, args: ["--all", "--json"] },
  {
    name: "archived task completion",
    cwd: CORPUS,
    args: ["--archived", "--json"],
  },
  { name: "archived, human exit code", cwd: CORPUS, args: ["--archived"] },
  {
    name: "custom schemas, single change --strict",
    cwd: SCHEMAS,
    args: ["lite-nobox", "--strict", "--json"],
  },
  {
    name: "project's own openspec --all --strict",
    cwd: REPO,
    args: ["--all", "--strict", "--json"],
  },
];

Deno.test("validate-spec agrees with the official OpenSpec CLI", async (t) => {
  const noRoot = await Deno.makeTempDir({ prefix: "openspec-noroot-" });
  // Every corpus item on its own too, the way a pre-commit hook calls it.
  const ids = [
    ...[...Deno.readDirSync(`${CORPUS}/openspec/changes`)].map((e) => e.name),
    "platform/storage",
    ...[...Deno.readDirSync(`${CORPUS}/openspec/specs`)].map((e) => e.name)
      .filter((n) => n !== "platform"),
  ].sort();
  const cases: Case[] = [
    ...CASES,
    ...ids.map((id) => ({
      name: `single ${id} --strict`,
      cwd: CORPUS,
      args: [id, "--strict", "--json"],
    })),
    { name: "bulk without a root", cwd: noRoot, args: ["--all", "--json"] },
    { name: "item without a root", cwd: noRoot, args: ["foo", "--json"] },
    {
      name: "archived without a root",
      cwd: noRoot,
      args: ["--archived", "--json"],
    },
  ];
  try {
    // All cases in one Node process, plus one real command line to check
    // that the driver and the CLI agree.
    const [official, cli] = await Promise.all([
      runOfficialBatch(cases),
      runOfficial(["validate", ...cases[0].args], cases[0].cwd),
    ]);
    await t.step("driver output equals the real CLI's", () => {
      assert.equal(official[0].code, cli.code);
      assert.deepEqual(
        normalize(official[0].json as Json),
        normalize(cli.json as Json),
      );
    });
    for (const [k, c] of cases.entries()) {
      await t.step(c.name, async () => {
        const theirs = official[k];
        const ours = await runValidate(toOptions(c.args, c.cwd));
        assert.equal(
          ours.exitCode,
          theirs.code,
          `exit code of ${c.args.join(" ")}`,
        );
        if (!c.args.includes("--json")) return;
        assert.ok(
          theirs.json,
          `official printed no JSON: ${theirs.stdout}${theirs.stderr}`,
        );
        const mine = JSON.parse(ours.stdout) as Json;
        assert.deepEqual(normalize(mine), normalize(theirs.json as Json));
        // Every line the official reports is ours too (we add more).
        const ourLines = linesOf(mine);
        for (const [item, lines] of linesOf(theirs.json as Json)) {
          lines.forEach((line, i) => {
            if (line !== undefined) {
              assert.equal(
                ourLines.get(item)?.[i],
                line,
                `${item} issue ${i} line`,
              );
            }
          });
        }
      });
    }
  } finally {
    await Deno.remove(noRoot, { recursive: true });
  }
});
