import { analyzeText, needsParse } from "../audit/normalize/mod.ts";
const s = "def f(k, box):\n    return k / float(1000)\n";
console.log(needsParse(s), await analyzeText("a.py", s));
