import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import {
  ConfigError,
  configHash,
  DEFAULTS,
  loadConfig,
  loadConfigDetailed,
  resolveConfigObject,
  stage2Schema,
  writeResolvedConfig,
} from "../../../trainer/config/mod.ts";

const FIX = join(
  dirname(fileURLToPath(import.meta.url)),
  "../../fixtures/config",
);
const fx = (name: string) => join(FIX, name);

async function configError(p: Promise<unknown>): Promise<ConfigError> {
  const e = await p.then(() => undefined, (e) => e);
  assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
  assert.ok(!e.message.includes("\n"), `one-line message: ${e.message}`);
  return e;
}

Deno.test("defaults validate against the strict schema and an empty config is the defaults", async () => {
  assert.ok(stage2Schema.safeParse(DEFAULTS).success);
  const cfg = await resolveConfigObject({}, "mem.yaml");
  assert.equal(cfg.training.seed, 17);
  assert.equal(cfg.training.micro_batch_size, 2);
  assert.equal(cfg.training.gradient_accumulation_steps, 2);
  assert.equal(cfg.training.packing.max_length, 2048);
  assert.equal(cfg.custom.trainer_variant, "sft");
  assert.equal(cfg.data.synth.image_size % 32, 0);
});

Deno.test("extends chains deep-merge; lists replace; paths resolve against the declaring file", async () => {
  const { config: c, files } = await loadConfigDetailed(
    fx("sub/grandchild.yaml"),
  );
  assert.deepEqual(files, [
    fx("base.yaml"),
    fx("child.yaml"),
    fx("sub/grandchild.yaml"),
  ]);
  assert.equal(c.training.max_steps, 40); // child over base
  assert.equal(c.training.learning_rate, 0.0005); // from base
  assert.equal(c.training.packing.max_length, 512); // base, sibling of a child key
  assert.equal(c.training.packing.enabled, false); // child
  assert.equal(c.custom.extra.stage2_ab.n_softctx_iter, 3);
  assert.deepEqual(c.custom.extra.stage2_ab.schedule.pattern, ["B"]); // replaced, not merged
  assert.equal(c.model.tokenizer, fx("tok/tokenizer.json"));
  assert.equal(c.data.train_jsonl, fx("data/train.jsonl"));
  assert.equal(c.data.val_jsonl, fx("sub/val.jsonl"));
  assert.equal(c.training.seed, DEFAULTS.training.seed);
});

Deno.test("extends cycles are reported with the chain, not followed forever", async () => {
  const e = await configError(loadConfig(fx("cycle_a.yaml")));
  assert.match(
    e.message,
    /^extends cycle: .*cycle_a\.yaml -> .*cycle_b\.yaml -> .*cycle_a\.yaml$/,
  );
  const s = await configError(loadConfig(fx("self_cycle.yaml")));
  assert.match(
    s.message,
    /^extends cycle: .*self_cycle\.yaml -> .*self_cycle\.yaml$/,
  );
});

Deno.test("out-of-range values name the dotted key, the rule and file:line", async () => {
  const e = await configError(loadConfig(fx("bad_softctx.yaml")));
  assert.match(
    e.message,
    /^custom\.extra\.stage2_ab\.n_softctx_iter must be an integer >= 1, got 0 \(.*bad_softctx\.yaml:5\)$/,
  );
  const p = await configError(loadConfig(fx("bad_pattern.yaml")));
  assert.match(
    p.message,
    /^custom\.extra\.stage2_ab\.schedule\.pattern must be a non-empty list whose entries are "A" or "B", got \["A","C"\] \(.*bad_pattern\.yaml:7\)$/,
  );
  const em = await configError(loadConfig(fx("empty_pattern.yaml")));
  assert.match(
    em.message,
    /schedule\.pattern must be a non-empty list .* got \[\] \(.*empty_pattern\.yaml:5\)/,
  );
});

Deno.test("every problem is collected; wrong types and enums say what is allowed", async () => {
  const e = await configError(loadConfig(fx("bad_types.yaml")));
  assert.match(e.message, /\(and 1 more problem\)$/);
  assert.equal(e.problems.length, 2);
  assert.match(
    e.problems[0],
    /^training\.lr_scheduler must be one of "cosine", "linear", "constant", got "step" \(.*bad_types\.yaml:2\)$/,
  );
  assert.match(
    e.problems[1],
    /^training\.micro_batch_size must be an integer >= 1, got 1\.5 \(.*bad_types\.yaml:3\)$/,
  );
  // cross-key rules run once the keys themselves are valid
  const x = await configError(
    loadConfig(fx("bad_types.yaml"), [
      "training.lr_scheduler=linear",
      "training.micro_batch_size=1",
    ]),
  );
  assert.match(
    x.message,
    /^data\.min_pixels must be <= data\.max_pixels \(4000\), got 5000 \(.*bad_types\.yaml:5\)$/,
  );
});

Deno.test("unknown keys name the path, file:line, a suggestion and the allowed keys", async () => {
  const e = await configError(loadConfig(fx("unknown_key.yaml")));
  assert.match(
    e.message,
    /^unknown key training\.lerning_rate \(.*unknown_key\.yaml:3\) \(did you mean learning_rate\?\); allowed keys under training: output_dir, seed, max_steps, .*learning_rate/,
  );
  const top = await configError(
    resolveConfigObject({ trainer: {} }, "mem.yaml"),
  );
  assert.match(
    top.message,
    /^unknown key trainer \(mem\.yaml\); allowed keys: model, data, training, custom$/,
  );
});

Deno.test("YAML syntax errors and missing files point at the file", async () => {
  const e = await configError(loadConfig(fx("syntax.yaml")));
  assert.match(e.message, /syntax\.yaml:[34]: YAML syntax error: /);
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, RegExp][] = [
      [
        "a: 1\ntraining: {}\ntraining: {}\n",
        /dup\.yaml:3: YAML syntax error: Map keys must be unique/,
      ],
      [
        "training: {}\n---\nmodel: {}\n",
        /dup\.yaml:\d: YAML syntax error: a config file must hold a single YAML document/,
      ],
      ["training: *nope\n", /dup\.yaml: YAML error: .*alias/i],
      [
        "- 1\n- 2\n",
        /dup\.yaml:1: a config file must be a YAML mapping of keys, got \[1,2\]/,
      ],
    ];
    for (const [text, want] of cases) {
      await Deno.writeTextFile(join(dir, "dup.yaml"), text);
      assert.match(
        (await configError(loadConfig(join(dir, "dup.yaml")))).message,
        want,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const m = await configError(loadConfig(fx("missing_parent.yaml")));
  assert.match(
    m.message,
    /^cannot read config .*does_not_exist\.yaml: file not found \(extended from .*missing_parent\.yaml:1\)$/,
  );
});

Deno.test("--set overrides parse YAML scalars, win over files and reject unknown keys", async () => {
  const c = await loadConfig(fx("child.yaml"), [
    "training.max_steps=7",
    "custom.extra.stage2_ab.schedule.pattern=[B, A]",
    "training.packing.enabled=true",
    "training.threads=null",
    "model.tokenizer=rel/tok.json",
  ]);
  assert.equal(c.training.max_steps, 7);
  assert.deepEqual(c.custom.extra.stage2_ab.schedule.pattern, ["B", "A"]);
  assert.equal(c.training.packing.enabled, true);
  assert.equal(c.training.threads, null);
  // a path typed on the command line is relative to where the user stands
  assert.equal(
    c.model.tokenizer,
    join(Deno.env.get("INIT_CWD") ?? Deno.cwd(), "rel/tok.json"),
  );

  const u = await configError(
    loadConfig(fx("child.yaml"), ["training.max_stepz=3"]),
  );
  assert.match(
    u.message,
    /^unknown key training\.max_stepz \(--set training\.max_stepz=3\) \(did you mean max_steps\?\)/,
  );
  const deep = await configError(
    loadConfig(fx("child.yaml"), ["training.seed.x=3"]),
  );
  assert.match(deep.message, /^unknown key training\.seed\.x /);
  const bad = await configError(
    loadConfig(fx("child.yaml"), [
      "custom.extra.stage2_ab.n_softctx_iter=zero",
    ]),
  );
  assert.match(
    bad.message,
    /n_softctx_iter must be an integer >= 1, got "zero" \(--set custom\.extra\.stage2_ab\.n_softctx_iter=zero\)$/,
  );
  // a mapping value merges into the group instead of replacing it
  const grp = await loadConfig(fx("child.yaml"), [
    "training.packing={enabled: true}",
  ]);
  assert.deepEqual(grp.training.packing, { enabled: true, max_length: 512 });
  const noEq = await configError(
    loadConfig(fx("child.yaml"), ["training.seed"]),
  );
  assert.match(noEq.message, /expected KEY=VALUE/);
});

Deno.test("settings that do nothing for the chosen variant are warned about", async () => {
  const { warnings } = await loadConfigDetailed(fx("sft_with_ab.yaml"));
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /custom\.extra\.stage2_ab has no effect with custom\.trainer_variant "sft" \(.*sft_with_ab\.yaml:4\)/,
  );
  const none = await loadConfigDetailed(fx("base.yaml"));
  assert.deepEqual(none.warnings, []);
});

Deno.test("a config that warm-starts from itself is rejected", async () => {
  const e = await configError(loadConfig(fx("warm_self.yaml")));
  assert.match(
    e.message,
    /^model\.warm_start_config points at .*warm_self\.yaml, which is this config .* \(.*warm_self\.yaml:2\)$/,
  );
  // an explicit checkpoint switches warm start off, so nothing loops
  const ckpt = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(ckpt, "config.json"), "{}");
    const ok = await loadConfig(fx("warm_self.yaml"), [
      `model.checkpoint=${ckpt}`,
    ]);
    assert.equal(ok.model.warm_start_config, fx("warm_self.yaml"));
  } finally {
    await Deno.remove(ckpt, { recursive: true });
  }
});

Deno.test("model.checkpoint must be a checkpoint folder: named at load, exit 2", async () => {
  const e = await configError(
    loadConfig(fx("base.yaml"), ["model.checkpoint=/nonexistent/ckpt"]),
  );
  assert.equal(
    e.message,
    "model.checkpoint /nonexistent/ckpt is not a checkpoint folder (no config.json there) (--set model.checkpoint=/nonexistent/ckpt)",
  );
  assert.equal(e.exitCode, 2);
});

Deno.test("an empty group keeps the defaults; warm_start_config resolves next to its YAML", async () => {
  const c = await loadConfig(fx("empty_group.yaml"));
  assert.deepEqual(c.training.packing, DEFAULTS.training.packing);
  assert.equal(c.model.warm_start_config, fx("stage1.yaml"));
});

Deno.test("warmup longer than the run is a warning only when the user set it", async () => {
  const w = await loadConfigDetailed(fx("base.yaml"), [
    "training.warmup_steps=30",
  ]);
  assert.deepEqual(w.warnings.length, 1);
  assert.match(
    w.warnings[0],
    /^training\.warmup_steps \(30\) exceeds training\.max_steps \(20\).*\(--set training\.warmup_steps=30\)$/,
  );
  const quick = await loadConfigDetailed(fx("base.yaml"), [
    "training.max_steps=3",
  ]);
  assert.deepEqual(quick.warnings, []);
  assert.equal(
    quick.config.training.warmup_steps,
    DEFAULTS.training.warmup_steps,
  );
});

Deno.test("cross-key rules: sampling needs a temperature, the buffer needs B, m_steps >= 1", async () => {
  const s = await configError(resolveConfigObject({
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: { rollout_matching: { decode_mode: "sample", temperature: 0 } },
    },
  }, "m.yaml"));
  assert.match(
    s.message,
    /rollout_matching\.temperature must be > 0 with decode_mode: sample/,
  );
  const b = await configError(resolveConfigObject({
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: { schedule: { pattern: ["A"] } },
        rollout_matching: { rollout_buffer: { enabled: true, m_steps: 2 } },
      },
    },
  }, "m.yaml"));
  assert.match(b.message, /rollout_buffer\.enabled needs at least one "B"/);
  const m = await configError(
    resolveConfigObject({
      custom: {
        extra: { rollout_matching: { rollout_buffer: { m_steps: 0 } } },
      },
    }, "m.yaml"),
  );
  assert.match(
    m.message,
    /rollout_buffer\.m_steps must be an integer >= 1, got 0/,
  );
});

Deno.test("configHash is stable, key-order independent and ignores output location", async () => {
  const a = await resolveConfigObject(
    { training: { max_steps: 3, seed: 1 } },
    "a.yaml",
  );
  const b = await resolveConfigObject({
    training: { seed: 1, max_steps: 3, output_dir: "elsewhere", threads: 1 },
  }, "b.yaml");
  const c = await resolveConfigObject(
    { training: { max_steps: 4, seed: 1 } },
    "a.yaml",
  );
  assert.match(configHash(a), /^[0-9a-f]{64}$/);
  assert.equal(configHash(a), configHash(b));
  assert.notEqual(configHash(a), configHash(c));
});

Deno.test("writeResolvedConfig writes YAML that reloads to the same config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = await loadConfig(fx("sub/grandchild.yaml"), [
      "training.max_steps=9",
    ]);
    const path = await writeResolvedConfig(join(dir, "run"), cfg);
    assert.equal(path, join(dir, "run/config.yaml"));
    const text = await Deno.readTextFile(path);
    assert.deepEqual(parse(text), cfg);
    assert.ok(text.includes(configHash(cfg)));
    const again = await loadConfig(path);
    assert.deepEqual(again, cfg);
    assert.deepEqual(
      [...Deno.readDirSync(join(dir, "run"))].map((e) => e.name),
      ["config.yaml"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the schema's key tree is exactly the shared config contract", () => {
  const leaves = (o: Record<string, unknown>, p = ""): string[] =>
    Object.entries(o).flatMap(([k, v]) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? leaves(v as Record<string, unknown>, `${p}${k}.`)
        : [`${p}${k}`]
    );
  const contract = `
    model.checkpoint model.preset model.tokenizer model.warm_start_config model.warm_start_dir
    data.train_jsonl data.val_jsonl data.synth.n_train data.synth.n_val
    data.synth.seed data.synth.image_size data.synth.max_objects data.synth.fresh data.max_pixels data.min_pixels
    training.output_dir training.seed training.max_steps training.micro_batch_size
    training.gradient_accumulation_steps training.learning_rate training.weight_decay
    training.adam_beta1 training.adam_beta2 training.adam_epsilon training.lr_scheduler
    training.warmup_steps training.max_grad_norm training.logging_steps training.eval_steps
    training.save_steps training.save_total_limit training.eval_max_samples
    training.packing.enabled training.packing.max_length training.trace training.resume training.threads
    custom.trainer_variant custom.extra.stage2_ab.schedule.pattern custom.extra.stage2_ab.n_softctx_iter
    custom.extra.stage2_ab.softctx_temperature custom.extra.stage2_ab.coord_decode_temperature
    custom.extra.stage2_ab.desc_ce_weight custom.extra.stage2_ab.bbox_l1_weight
    custom.extra.stage2_ab.bbox_giou_weight custom.extra.rollout_matching.decode_mode
    custom.extra.rollout_matching.temperature custom.extra.rollout_matching.top_p
    custom.extra.rollout_matching.max_new_tokens custom.extra.rollout_matching.candidate_top_k
    custom.extra.rollout_matching.maskiou_gate custom.extra.rollout_matching.fp_cost
    custom.extra.rollout_matching.fn_cost custom.extra.rollout_matching.packing_length
    custom.extra.rollout_matching.rollout_buffer.enabled custom.extra.rollout_matching.rollout_buffer.m_steps
  `.trim().split(/\s+/).sort();
  assert.deepEqual(
    leaves(DEFAULTS as unknown as Record<string, unknown>).sort(),
    contract,
  );
  // and the strict schema rejects anything outside it
  const extra = structuredClone(DEFAULTS) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  extra.training.lr = 1;
  assert.equal(stage2Schema.safeParse(extra).success, false);
});

/** Writes `files` (name -> text) into a temp folder and runs `fn` there. */
async function withFiles(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-cfg-" });
  try {
    for (const [n, t] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, n), t);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("an empty config file is refused instead of training the defaults", async () => {
  await withFiles({
    "empty.yaml": "",
    "comments.yaml": "# nothing here yet\n\n",
    "child.yaml": "extends: comments.yaml\ntraining: {max_steps: 3}\n",
    "only_extends.yaml": "extends: ok.yaml\n",
    "ok.yaml": "training: {max_steps: 3}\n",
  }, async (dir) => {
    for (const f of ["empty.yaml", "comments.yaml"]) {
      const e = await configError(loadConfig(join(dir, f)));
      assert.match(
        e.message,
        new RegExp(`config .*${f} is empty: it sets no keys`),
      );
      assert.equal(e.exitCode, 2);
    }
    const viaExtends = await configError(loadConfig(join(dir, "child.yaml")));
    assert.match(viaExtends.message, /comments\.yaml is empty.*extended from/);
    // a file that only extends another one is not empty
    const c = await loadConfig(join(dir, "only_extends.yaml"));
    assert.equal(c.training.max_steps, 3);
  });
});

Deno.test(".nan and .inf values are reported by name, not as null", async () => {
  await withFiles({
    "n.yaml":
      "training:\n  learning_rate: .nan\n  max_grad_norm: .inf\n  weight_decay: -.inf\n",
  }, async (dir) => {
    const e = await configError(loadConfig(join(dir, "n.yaml")));
    assert.deepEqual(e.problems, [
      `training.learning_rate must be a number > 0, got NaN (${
        join(dir, "n.yaml")
      }:2)`,
      `training.max_grad_norm must be a number > 0, got Infinity (${
        join(dir, "n.yaml")
      }:3)`,
      `training.weight_decay must be a number >= 0, got -Infinity (${
        join(dir, "n.yaml")
      }:4)`,
    ]);
  });
});

Deno.test("20k keys: every one is reported, and a duplicate among them is found with its line", async () => {
  const lines = ["training:", "  max_steps: 3"];
  for (let i = 0; i < 20000; i++) lines.push(`k${i}: ${i}`);
  await withFiles({
    "wide.yaml": lines.join("\n") + "\n",
    "dup.yaml": [...lines, "k17: again"].join("\n") + "\n",
  }, async (dir) => {
    const e = await configError(loadConfig(join(dir, "wide.yaml")));
    assert.equal(e.problems.length, 20000);
    assert.match(
      e.problems[19999],
      /^unknown key k19999 \(.*wide\.yaml:20002\)/,
    );
    assert.match(e.message, /\(and 19999 more problems\)$/);
    const d = await configError(loadConfig(join(dir, "dup.yaml")));
    assert.match(
      d.message,
      /dup\.yaml:20003: YAML syntax error: Map keys must be unique \("k17" appears twice\)/,
    );
  });
});
