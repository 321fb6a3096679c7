import { generateTree } from "./normalize_check_bench.ts";
import { Parser, Language } from "web-tree-sitter";
const dir = await Deno.makeTempDir();
await generateTree(dir, 40);
const py = await Deno.readTextFile(`${dir}/pkg0/m8.py`);
await Parser.init();
const lang = await Language.load(await Deno.readFile(new URL(import.meta.resolve("tree-sitter-python/tree-sitter-python.wasm"))));
const p = new Parser(); p.setLanguage(lang);
for (let r = 0; r < 5; r++) {
let t = performance.now();
for (let i = 0; i < 50; i++) p.parse(py)!.delete();
console.log("ts parse x50", performance.now() - t);
}
await Deno.remove(dir, { recursive: true });
