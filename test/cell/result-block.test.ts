// The test-host delegation's output filter: the inner sweep's result block is taken out of
// the stream wherever the chunks split, and everything else passes through unchanged —
// emoji (surrogate pairs) included.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RESULT_BEGIN, RESULT_END, ResultBlockFilter } from '../../src/cli/test-host-delegate.js';

test('the result block is removed and returned, at every split, emoji intact', () => {
  const text = `PASS one 🇽 ✅\n${RESULT_BEGIN}\n{"a":1}\n${RESULT_END}\ntail 🇽\n`;
  for (let cut = 0; cut <= text.length; cut++) {
    for (const cut2 of [cut, Math.min(text.length, cut + 7)]) {
      let out = '';
      const f = new ResultBlockFilter((t) => {
        out += t;
      });
      f.push(text.slice(0, cut));
      f.push(text.slice(cut, cut2));
      f.push(text.slice(cut2));
      f.end();
      assert.is(out, 'PASS one 🇽 ✅\ntail 🇽\n', `split at ${cut}/${cut2}`);
      assert.is(f.result, '{"a":1}');
      assert.not.match(out, /\ufffd/);
    }
  }
});

test('without a block everything passes and there is no result', () => {
  let out = '';
  const f = new ResultBlockFilter((t) => {
    out += t;
  });
  f.push('@@KTSTR_RES');
  f.push('ULT nothing\n');
  f.end();
  assert.is(out, '@@KTSTR_RESULT nothing\n');
  assert.is(f.result, undefined);
});

test.run();
