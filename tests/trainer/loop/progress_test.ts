import assert from "node:assert/strict";
import { formatDuration, Progress } from "../../../trainer/loop/progress.ts";

Deno.test("durations read as h/m/s", () => {
  assert.equal(formatDuration(5.4), "5s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(3720), "1h02m");
  assert.equal(formatDuration(NaN), "?");
});

Deno.test("plain mode prints whole log lines; TTY mode redraws one line with a bar and ETA", () => {
  const plain: string[] = [];
  const p = new Progress({
    total: 10,
    start: 0,
    tty: false,
    write: (s) => void plain.push(s),
  });
  p.update(1, "loss 2.0"); // not a logging step: nothing printed
  p.update(2, "loss 1.5", true);
  assert.equal(plain.length, 1);
  assert.match(plain[0], /^step 2\/10 loss 1\.5 eta \S+\n$/);

  const tty: string[] = [];
  const q = new Progress({
    total: 4,
    start: 0,
    tty: true,
    write: (s) => void tty.push(s),
  });
  q.update(2, "loss 1.0");
  const clear = "\r\x1b[2K";
  assert.ok(tty[0].startsWith(clear));
  assert.match(
    tty[0].slice(clear.length),
    /^\[#{12}-{12}\] 2\/4 loss 1\.0 eta /,
  );
  q.log("eval loss 0.9");
  assert.deepEqual(tty.slice(1), ["\r\x1b[2K", "eval loss 0.9\n"]);
  q.done();
  assert.equal(tty.length, 3, "no newline needed after log() cleared the bar");
});
