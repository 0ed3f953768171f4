import { describe, expect, it } from 'vitest';
import { CEL_LIMITS, createExpressions, LIQUID_LIMITS, StepError, type StepScope } from '../../../../services/playbooks/steps/index.js';

const x = createExpressions();

const scope: StepScope = {
  inputs: { channel: '#partners', count: 3, ratio: 1.5, big: 2 ** 52, names: ['a', 'b'] },
  steps: {
    unhealthy: { output: [{ id: 'i-1', provider: 'shopify' }, { id: 'i-2', provider: 'generic' }], status: 'succeeded' },
    any: { output: true, status: 'succeeded' },
    empty: { output: [], status: 'skipped' },
  },
};

/** The StepError code an expression is refused or fails with. */
function celCode(expression: string, s: StepScope = scope): string {
  try {
    x.evaluateCel(expression, s);
    return 'evaluated';
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).retryable).toBe(false);
    return (err as StepError).code;
  }
}

async function templateCode(source: string, s: StepScope = scope): Promise<string> {
  try {
    await x.renderTemplate(source, s);
    return 'rendered';
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    return (err as StepError).code;
  }
}

describe('CEL (evaluate, if)', () => {
  it("evaluates the issue's example expressions over inputs and step outputs", () => {
    expect(x.evaluateCel('size(steps.unhealthy.output) > 0', scope)).toBe(true);
    expect(x.evaluateCel('steps.any.output', scope)).toBe(true);
    expect(x.evaluateCel('true', scope)).toBe(true);
    expect(x.evaluateCel('steps.empty.status == "skipped"', scope)).toBe(true);
    expect(x.evaluateCel('steps.unhealthy.output.map(i, i.id)', scope)).toEqual(['i-1', 'i-2']);
    expect(x.evaluateCel('item.sku + ":" + string(index)', { ...scope, item: { sku: 'A' }, index: 4 })).toBe('A:4');
  });

  it('gives integers back as JSON numbers, not BigInt (whole JSON numbers are CEL ints)', () => {
    const out = x.evaluateCel('{"n": inputs.count + 1, "s": size(inputs.names), "r": inputs.ratio * 2.0, "l": [1, 2]}', scope);
    expect(out).toEqual({ n: 4, s: 2, r: 3, l: [1, 2] });
    expect(JSON.stringify(out)).toBe('{"n":4,"s":2,"r":3,"l":[1,2]}');
    expect(x.evaluateCel('inputs.big * 1024', scope)).toBe((2n ** 62n).toString()); // beyond 2^53: a string, exact
    expect(x.evaluateCel('b"hi"', scope)).toBe('aGk=');
    expect(x.evaluateCel('timestamp("2026-12-07T09:00:00Z")', scope)).toBe('2026-12-07T09:00:00.000Z');
  });

  it('refuses syntax and type errors at check time, naming the problem', () => {
    expect(() => x.checkCel('size(steps.unhealthy.output) >')).toThrow(/invalid expression: .*column/);
    expect(() => x.checkCel('size(1)')).toThrow(/invalid expression: found no matching overload/);
    expect(() => x.checkCel('')).toThrow(/non-empty/);
    for (const bad of ['1 +', 'size(1)', '']) {
      try {
        x.checkCel(bad);
      } catch (err) {
        expect((err as StepError).code).toBe('EXPRESSION_INVALID');
      }
    }
    expect(() => x.checkCel('size(steps.unhealthy.output) > 0 && inputs.channel.startsWith("#")')).not.toThrow();
  });

  it('never reaches JavaScript: constructor, __proto__, prototype, process, globalThis and this are refused', () => {
    const attempts = [
      'inputs.constructor',
      'inputs["constructor"]',
      'inputs.__proto__',
      'inputs["__proto__"]',
      'inputs.constructor.constructor("return process")()',
      'steps.unhealthy.output[0].constructor',
      'steps.unhealthy.output.constructor',
      'inputs.names.prototype',
      'inputs.toString',
      'inputs.hasOwnProperty',
      '"x".constructor',
      'process',
      'process.env',
      'globalThis',
      'this',
      'require("fs")',
      'eval("1")',
      'Function("return 1")',
      'dyn(inputs).__proto__',
    ];
    for (const expression of attempts) {
      const code = celCode(expression);
      expect([`${expression}: EXPRESSION_INVALID`, `${expression}: EXPRESSION_FAILED`]).toContain(`${expression}: ${code}`);
    }
    // has() of an inherited name is false: the prototype is not there to be seen
    expect(x.evaluateCel('has(inputs.constructor) || has(inputs.__proto__) || has(inputs.toString)', scope)).toBe(false);
  });

  it('a value planted on a prototype or behind a getter in the scope is not seen', () => {
    const proto = { secret: 'inherited' };
    const inputs = Object.create(proto) as Record<string, unknown>;
    inputs.own = 1;
    Object.defineProperty(inputs, 'hidden', { get: () => 'getter', enumerable: false });
    expect(celCode('inputs.secret', { inputs, steps: {} })).toBe('EXPRESSION_FAILED');
    expect(celCode('inputs.hidden', { inputs, steps: {} })).toBe('EXPRESSION_FAILED');
    expect(x.evaluateCel('inputs.own', { inputs, steps: {} })).toBe(1);
  });

  it('refuses what is too long, too deep or too costly before running it', () => {
    expect(celCode(`"${'a'.repeat(CEL_LIMITS.sourceChars)}"`)).toBe('EXPRESSION_INVALID');
    expect(celCode(`${'('.repeat(60)}1${')'.repeat(60)}`)).toBe('EXPRESSION_INVALID');
    expect(celCode(Array.from({ length: 600 }, () => '1').join(' + '))).toBe('EXPRESSION_INVALID');
    expect(celCode('inputs.names.map(a, inputs.names.map(b, inputs.names.map(c, 1)))')).toBe('EXPRESSION_TOO_COSTLY');
    // quadratic over a large list: refused by the cost estimate, not run
    const big: StepScope = { inputs: { l: Array.from({ length: 5000 }, (_, i) => i) }, steps: {} };
    const started = performance.now();
    expect(celCode('inputs.l.map(a, inputs.l.filter(b, b > a).size()).size() > 0', big)).toBe('EXPRESSION_TOO_COSTLY');
    expect(performance.now() - started).toBeLessThan(200);
    // the same expression over a small list runs
    expect(x.evaluateCel('inputs.l.map(a, inputs.l.filter(b, b > a).size())', { inputs: { l: [1, 2, 3] }, steps: {} })).toEqual([2, 1, 0]);
    // doubling a list through nested binds: the estimate grows with every +
    expect(celCode('cel.bind(a, inputs.l + inputs.l, cel.bind(b, a + a, cel.bind(c, b + b, cel.bind(d, c + c, d.map(x, d.map(y, 1)))))).size()', big)).toBe('EXPRESSION_TOO_COSTLY');
    // a scope too large to hand to an expression
    const huge: StepScope = { inputs: { l: Array.from({ length: CEL_LIMITS.scopeValues + 1 }, () => 0) }, steps: {} };
    expect(celCode('true', huge)).toBe('EXPRESSION_TOO_COSTLY');
  });

  it('fails at run time with a typed error (no such key, wrong type)', () => {
    expect(celCode('inputs.missing')).toBe('EXPRESSION_FAILED');
    expect(celCode('inputs.channel + 1')).toBe('EXPRESSION_FAILED');
    expect(() => x.evaluateCel('inputs.missing', scope)).toThrow(/No such key: missing/);
  });
});

describe('Liquid (template)', () => {
  it("renders the issue's example with the size filter", async () => {
    const out = await x.renderTemplate('{{ steps.unhealthy.output | size }} integrations need attention in {{ inputs.channel }}', scope);
    expect(out).toBe('2 integrations need attention in #partners');
    const list = await x.renderTemplate('{% for i in steps.unhealthy.output %}- {{ i.id }} ({{ i.provider | upcase }})\n{% endfor %}', scope);
    expect(list).toBe('- i-1 (SHOPIFY)\n- i-2 (GENERIC)\n');
    expect(await x.renderTemplate('{{ item.sku }}#{{ index }}', { ...scope, item: { sku: 'A' }, index: 2 })).toBe('A#2');
  });

  it('refuses unknown variables and filters instead of printing nothing', async () => {
    expect(await templateCode('{{ inputs.nope }}')).toBe('TEMPLATE_FAILED');
    expect(await templateCode('{{ nope }}')).toBe('TEMPLATE_FAILED');
    expect(await templateCode('{{ inputs.channel | nosuchfilter }}')).toBe('TEMPLATE_INVALID');
    expect(() => x.checkTemplate('{% if %}')).toThrow(/invalid template/);
    expect(() => x.checkTemplate('{{ steps.a.output | size }}')).not.toThrow();
  });

  it('never reaches a prototype, constructor, process or the disk', async () => {
    const attempts = [
      '{{ inputs.constructor }}',
      '{{ inputs["constructor"] }}',
      '{{ inputs.__proto__ }}',
      '{{ inputs.constructor.constructor }}',
      '{{ inputs.names.constructor.name }}',
      '{{ inputs.toString }}',
      '{{ steps.unhealthy.output.first.constructor }}',
      '{% assign k = "constructor" %}{{ inputs[k] }}',
      '{{ steps.unhealthy.output | map: "constructor" | first }}',
      '{{ steps.unhealthy.output | where: "constructor" | size }}',
      '{{ process }}',
      '{{ process.env }}',
      '{{ global }}',
      '{{ globalThis }}',
      '{% include "/etc/passwd" %}',
      "{% render '/etc/hostname' %}",
      "{% layout 'package.json' %}x",
    ];
    for (const source of attempts) {
      let out: string | undefined;
      let code: string | undefined;
      try {
        out = await x.renderTemplate(source, scope);
      } catch (err) {
        code = (err as StepError).code;
      }
      // either refused, or rendered to nothing that came from JavaScript
      if (out !== undefined) expect({ source, out }).toEqual({ source, out: expect.not.stringMatching(/function|Object|root:|\[native code\]|concord/) });
      else expect(['TEMPLATE_FAILED', 'TEMPLATE_INVALID']).toContain(code);
    }
    // nothing inherited through the scope either
    const inputs = Object.create({ secret: 'inherited' }) as Record<string, unknown>;
    expect(await templateCode('{{ inputs.secret }}', { inputs, steps: {} })).toBe('TEMPLATE_FAILED');
  });

  it('stops a render that runs too long, builds too much or writes too much', async () => {
    expect(await templateCode(`${'x'.repeat(LIQUID_LIMITS.sourceChars + 1)}`)).toBe('TEMPLATE_TOO_LARGE');
    const loops = '{% for a in (1..100000) %}{% for b in (1..100000) %}{{ a }}{% endfor %}{% endfor %}';
    const started = performance.now();
    expect(['TEMPLATE_TIMEOUT', 'TEMPLATE_TOO_LARGE']).toContain(await templateCode(loops));
    expect(performance.now() - started).toBeLessThan(LIQUID_LIMITS.renderMs * 5);
    const wide = '{% assign s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" %}{% for a in (1..30) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}';
    expect(['TEMPLATE_TOO_LARGE', 'TEMPLATE_TIMEOUT', 'TEMPLATE_FAILED']).toContain(await templateCode(wide));
    const big = '{% for a in (1..200000) %}xxxxxxxxxx{% endfor %}';
    expect(['TEMPLATE_TOO_LARGE', 'TEMPLATE_TIMEOUT']).toContain(await templateCode(big));
  });

  it('stops waiting when the step is cancelled', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(x.renderTemplate('{{ inputs.channel }}', scope, ac.signal)).rejects.toMatchObject({ code: 'TEMPLATE_ABORTED' });
  });
});
