// JUnit XML: the shape CI systems read (one testsuite, a testcase per cell named
// sweep.<scheduler> / <kernel>/<topology>, a typed <failure> with the cell's report), and
// well-formed XML 1.0 for any text a scheduler or guest can produce — checked by a small
// parser written here (one root, balanced tags, quoted attributes, entity references only,
// no `]]>` in text, only characters XML 1.0 allows) that also decodes what it reads, so the
// text is compared after the round trip.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sweepJunit, xmlAttribute, xmlEscape } from '../../src/sweep/junit.js';
import { healthy, rejected, sweepResult } from './fake-cells.js';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** XML 1.0's Char production, code point by code point (a lone surrogate fails). */
function allowedChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function decode(raw: string, where: string): string {
  return raw.replace(/&([^;]*);?/g, (all, name: string) => {
    if (!all.endsWith(';')) assert.unreachable(`${where}: & not part of an entity reference`);
    if (name in ENTITIES) return ENTITIES[name];
    const num = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(name);
    if (!num) assert.unreachable(`${where}: unknown entity &${name};`);
    const cp = num![1] !== undefined ? parseInt(num![1], 16) : Number(num![2]);
    assert.ok(allowedChar(cp), `${where}: character reference to a forbidden character ${cp}`);
    return String.fromCodePoint(cp);
  });
}

/** Parses `xml` or fails the test saying why it is not well-formed. */
function parseXml(xml: string): XmlElement {
  for (const ch of xml)
    assert.ok(allowedChar(ch.codePointAt(0)!), `forbidden character U+${ch.codePointAt(0)!.toString(16)}`);
  let rest = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, '');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const token = /^(?:<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*\s*=\s*"[^"]*")*)\s*(\/?)>|([^<]+))/;
  while (rest.length > 0) {
    const m = token.exec(rest);
    if (!m) assert.unreachable(`not well-formed at ${JSON.stringify(rest.slice(0, 40))}`);
    rest = rest.slice(m![0].length);
    const [, closing, name, attrText, selfClosing, text] = m!;
    if (text !== undefined) {
      assert.not.ok(text.includes(']]>'), 'no ]]> in character data');
      if (stack.length === 0) assert.ok(/^\s*$/.test(text), 'only white space outside the root');
      else stack[stack.length - 1].text += decode(text, `text of <${stack[stack.length - 1].name}>`);
      continue;
    }
    if (closing) {
      assert.is(stack.pop()?.name, name, `</${name}> closes the open element`);
      continue;
    }
    const el: XmlElement = { name, attrs: {}, children: [], text: '' };
    for (const a of attrText.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*"([^"]*)"/g)) {
      assert.not.ok(a[1] in el.attrs, `attribute ${a[1]} once`);
      assert.not.ok(a[2].includes('<'), `no < in attribute ${a[1]}`);
      // attribute-value normalisation (XML 1.0 3.3.3): literal white space reads as a space
      el.attrs[a[1]] = decode(a[2].replace(/[\t\n\r]/g, ' '), `${name}@${a[1]}`);
    }
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else {
      assert.is(root, undefined, 'one root element');
      root = el;
    }
    if (!selfClosing) stack.push(el);
  }
  assert.is(stack.length, 0, 'every element closed');
  assert.ok(root, 'a root element');
  return root!;
}

test('the checker itself rejects what is not well-formed', () => {
  const bad = [
    '<a>x < y</a>',
    '<a>x & y</a>',
    '<a><b></a></b>',
    '<a>]]></a>',
    '<a/><b/>',
    '<a x="1" x="2"/>',
    '<a>\u0000</a>',
    '<a>&#0;</a>',
    '<a>\ud800</a>',
    '<a x="<"/>',
  ];
  const refused = (xml: string): boolean => {
    try {
      parseXml(xml);
      return false;
    } catch {
      return true;
    }
  };
  for (const xml of bad) assert.ok(refused(xml), `accepted ${JSON.stringify(xml)}`);
  assert.is(parseXml('<a x="&lt;&amp;&#x41;">t&gt;&#66;<b/></a>').attrs.x, '<&A');
});

test('one testsuite, one testcase per cell with classname, name and time; failures typed, with the report', () => {
  const result = sweepResult([...healthy, rejected]);
  const xml = sweepJunit(result);
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
  const root = parseXml(xml);
  assert.is(root.name, 'testsuites');
  assert.is(root.children.length, 1);
  const suite = root.children[0];
  assert.equal(
    { name: suite.name, ...suite.attrs },
    {
      name: 'ktstr-wasm sweep',
      tests: '5',
      failures: '1',
      errors: '0',
      skipped: '0',
      time: '13.100',
      timestamp: '2026-12-04T03:00:00.000Z',
    },
  );
  assert.equal(
    suite.children.map((t) => [t.name, t.attrs.classname, t.attrs.name, t.attrs.time]),
    [
      ['testcase', 'sweep.scx-ktstr', '6.12.117-sched_ext/tiny-1llc', '12.406'],
      ['testcase', 'sweep.scx-ktstr', '6.12.117-sched_ext/tiny-2llc', '12.406'],
      ['testcase', 'sweep.scx-ktstr', '6.12.117-sched_ext/odd-3llc', '12.406'],
      ['testcase', 'sweep.scx-ktstr', '6.12.117-sched_ext/smt-2llc', '12.406'],
      ['testcase', 'sweep.ktstr_broken', '6.12.117-sched_ext/tiny-1llc', '3.940'],
    ],
  );
  assert.ok(
    suite.children.slice(0, 4).every((t) => t.children.length === 0),
    'a passed cell has no failure',
  );
  const failure = suite.children[4].children[0];
  assert.is(failure.name, 'failure');
  assert.equal(failure.attrs, { type: 'verify', message: "verify: R1 invalid mem access 'scalar'" });
  assert.ok(
    failure.text.startsWith('=== ktstr_broken | kernel 6.12.117-sched_ext | topology tiny-1llc ===\n'),
    failure.text,
  );
  assert.ok(failure.text.includes('processed=186  states=7/7'));
  assert.ok(failure.text.includes('--- 8x of the following 25 lines ---'));
});

test('hostile text in names, message, log and console stays well-formed and reads back', () => {
  const hostile = '<x a="1">]]> & &amp; \'q\'\n\u0000\u0001\u000b\u001b[31m\ud800 \udc00\ufffe\uffff ok \u{1f1fd}';
  const cell = {
    ...rejected,
    scheduler: 'evil"&<sched>',
    kernel: '6.12\u0000]]>',
    topology: 'tiny-1llc',
    failure: { kind: 'crash' as const, message: hostile },
    schedulerLog: `log ${hostile}\n`,
    consoleTail: `tail ${hostile}\n`,
  };
  const xml = sweepJunit(sweepResult([{ ...cell, id: `sweep/${cell.scheduler}/${cell.kernel}/${cell.topology}` }]));
  const testcase = parseXml(xml).children[0].children[0];
  assert.is(testcase.attrs.classname, 'sweep.evil"&<sched>');
  assert.is(testcase.attrs.name, '6.12\ufffd]]>/tiny-1llc', 'the forbidden NUL replaced, the rest kept');
  const failure = testcase.children[0];
  assert.is(failure.attrs.type, 'crash');
  assert.is(
    failure.attrs.message,
    'crash: <x a="1">]]> & &amp; \'q\'\n\ufffd\ufffd\ufffd\ufffd[31m\ufffd \ufffd\ufffd\ufffd ok \u{1f1fd}',
  );
  assert.ok(failure.text.includes('log <x a="1">]]> & &amp;'), 'the log is there, markup characters intact');
  assert.ok(failure.text.includes('tail <x a="1">]]>'), 'the console tail too');
});

test('xmlEscape: the five markup characters, forbidden characters replaced, pairs and allowed controls kept', () => {
  assert.is(xmlEscape('<a&"\'>'), '&lt;a&amp;&quot;&apos;&gt;');
  assert.is(xmlEscape('\t\n\r\u0000\u001f\ud83d\ude00\ud800'), '\t\n\r\ufffd\ufffd\ud83d\ude00\ufffd');
  assert.is(
    xmlAttribute('a\tb\nc\r"'),
    'a&#9;b&#10;c&#13;&quot;',
    'attribute values keep tab, newline and CR through parsing',
  );
});

test.run();
