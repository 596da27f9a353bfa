// `greeting`, in JavaScript: the agent greets the customer within the first
// N seconds. The same rule as plugins/greeting (Rust), verdict for verdict:
// both pass plugins/greeting/golden.
//
// Passes when an agent segment that begins within `within-seconds` of the
// start contains one of `phrases` (case-insensitive, matched by the host).
// Not applicable when the session has no transcript or the agent never
// speaks (an abandoned call is judged elsewhere).

import { containsAny } from 'callqa:rule/helpers@0.1.0';

const DEFAULT_PHRASES = [
  '您好', '你好', '欢迎致电', '很高兴为您服务', 'hello', 'hi', 'good morning',
  'good afternoon', 'good evening', 'thank you for calling', 'welcome',
];

// A `result` error is thrown; componentize-js turns the thrown variant into
// `err(rule-error)`.
class BadParams extends Error {
  constructor(why) {
    super(why);
    this.payload = { tag: 'bad-params', val: why };
  }
}

// `params` arrives as [name, value] pairs; `value` is a WIT variant, so
// `{ tag, val }` with s64 as BigInt.
function param(params, name) {
  const found = params.find(([n]) => n === name);
  if (!found) throw new BadParams(`parameter \`${name}\` is missing`);
  return found[1];
}

function integerParam(params, name) {
  const v = param(params, name);
  if (v.tag === 'integer') return v.val;
  if (v.tag === 'number' && Number.isInteger(v.val)) return BigInt(v.val);
  throw new BadParams(`parameter \`${name}\` must be an integer, got ${v.tag}`);
}

function textListParam(params, name) {
  const v = param(params, name);
  if (v.tag === 'text-list') return v.val;
  if (v.tag === 'text') return [v.val];
  throw new BadParams(`parameter \`${name}\` must be a list of strings, got ${v.tag}`);
}

function findingAt(segment, message) {
  return { message, segmentId: segment.id, beginMs: segment.beginMs, endMs: segment.endMs };
}

export const rule = {
  describe() {
    return {
      id: 'greeting',
      version: '0.1.0',
      description: 'The agent greets the customer within the first N seconds',
      params: [
        { name: 'within-seconds', kind: 'integer', default: '10', description: 'The greeting must begin within this many seconds of the start' },
        { name: 'phrases', kind: 'text-list', default: JSON.stringify(DEFAULT_PHRASES), description: 'Phrases that count as a greeting (case-insensitive substrings)' },
      ],
    };
  },

  evaluate(session, params) {
    const within = integerParam(params, 'within-seconds');
    if (within <= 0n) throw new BadParams('`within-seconds` must be positive');
    const phrases = textListParam(params, 'phrases');
    if (!session.hasTranscript()) {
      return { outcome: 'not-applicable', reason: 'the session has no transcript', findings: [] };
    }
    const agent = session.segmentsByRole('agent');
    if (agent.length === 0) {
      return { outcome: 'not-applicable', reason: 'the agent never spoke', findings: [] };
    }
    // As the Rust twin: the seconds as a u32, times 1000, saturating.
    const withinMs = Math.min(Number(BigInt.asUintN(32, within)) * 1000, 0xffffffff);
    // The Rust twin reads the agent's segments that begin within the window
    // (`segments-between` filtered by role): the same segments, in the same
    // order, as these. Filtering the list already lifted saves lifting every
    // customer segment again, which is what JavaScript pays for most.
    for (const segment of agent) {
      if (segment.beginMs >= withinMs) continue;
      const i = containsAny(segment.text, phrases);
      if (i !== undefined) {
        return { outcome: 'pass', score: 1, findings: [findingAt(segment, `greeted with "${phrases[i]}"`)] };
      }
    }
    return {
      outcome: 'fail',
      score: 0,
      reason: `no greeting within the first ${within} s`,
      findings: [findingAt(agent[0], "the agent's first words have no greeting")],
    };
  },
};
