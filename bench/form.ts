// The benchmark's form and submissions: a generated 250-question XForm (24 groups of 10 mixed questions —
// text, integer, decimal, date, dateTime, select one, select multiple, geopoint, boolean-like choice, note
// text — plus a `members` repeat of 10 questions) and deterministic, varied instances of it.

export const questionCount = 250;
export const xmlFormId = 'bench';
const groups = 24;
const perGroup = 10;

/** Question kinds, cycled through inside each group (and the repeat). */
const kinds = ['text', 'int', 'decimal', 'date', 'dateTime', 'select1', 'select', 'geopoint', 'yesno', 'comment'] as const;
type Kind = typeof kinds[number];

const bindType: Record<Kind, string> = {
  text: 'string', int: 'int', decimal: 'decimal', date: 'date', dateTime: 'dateTime',
  select1: 'string', select: 'string', geopoint: 'geopoint', yesno: 'string', comment: 'string',
};

const choices = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];

interface Question { name: string; kind: Kind }

const groupQuestions: Question[][] = Array.from({ length: groups }, (_, g) =>
  Array.from({ length: perGroup }, (_, q) => ({ name: `q${g * perGroup + q}`, kind: kinds[q] })));
const memberQuestions: Question[] = kinds.map((kind, i) => ({ name: `m${i}`, kind }));

function control(ref: string, q: Question): string {
  const label = `<label>${q.name}</label>`;
  const items = choices.map((c) => `<item><label>${c}</label><value>${c}</value></item>`).join('');
  if (q.kind === 'select1' || q.kind === 'yesno') return `<select1 ref="${ref}">${label}${items}</select1>`;
  if (q.kind === 'select') return `<select ref="${ref}">${label}${items}</select>`;
  return `<input ref="${ref}">${label}</input>`;
}

/** The XForm, version 1. */
export function formXml(): string {
  const instance = groupQuestions.map((qs, g) => `<g${g}>${qs.map((q) => `<${q.name}/>`).join('')}</g${g}>`).join('')
    + `<members jr:template="">${memberQuestions.map((q) => `<${q.name}/>`).join('')}</members>`;
  const binds = [
    ...groupQuestions.flatMap((qs, g) => qs.map((q) => `<bind nodeset="/data/g${g}/${q.name}" type="${bindType[q.kind]}"/>`)),
    ...memberQuestions.map((q) => `<bind nodeset="/data/members/${q.name}" type="${bindType[q.kind]}"/>`),
    '<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>',
  ].join('');
  const body = groupQuestions.map((qs, g) => `<group ref="/data/g${g}"><label>Group ${g}</label>${qs.map((q) => control(`/data/g${g}/${q.name}`, q)).join('')}</group>`).join('')
    + `<group ref="/data/members"><label>Members</label><repeat nodeset="/data/members">${memberQuestions.map((q) => control(`/data/members/${q.name}`, q)).join('')}</repeat></group>`;
  return '<?xml version="1.0"?><h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" '
    + 'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">'
    + `<h:head><h:title>Bench (${questionCount} questions)</h:title><model><instance><data id="${xmlFormId}" version="1">`
    + `${instance}<meta><instanceID/></meta></data></instance>${binds}</model></h:head><h:body>${body}</h:body></h:html>`;
}

/** A small deterministic generator, so every run sends the same data. */
function random(seed: number) {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 4294967296;
  };
}

const words = ['field', 'house', 'water', 'river', 'school', 'market', 'clinic', 'road', 'farm', 'tree', 'goat', 'maize'];

function answer(kind: Kind, next: () => number, n: number): string {
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)];
  switch (kind) {
    case 'text': return `${pick(words)} ${pick(words)} ${Math.floor(next() * 1000)}`;
    case 'int': return String(Math.floor(next() * 10000) - 100);
    case 'decimal': return (next() * 1000).toFixed(3);
    case 'date': return `2024-${String(1 + Math.floor(next() * 12)).padStart(2, '0')}-${String(1 + Math.floor(next() * 28)).padStart(2, '0')}`;
    case 'dateTime': return new Date(Date.UTC(2024, 0, 1) + Math.floor(next() * 3e10)).toISOString();
    case 'select1': return pick(choices);
    case 'select': return choices.filter(() => next() < 0.4).join(' ');
    case 'geopoint': return `${(next() * 180 - 90).toFixed(6)} ${(next() * 360 - 180).toFixed(6)} ${(next() * 500).toFixed(1)} ${(next() * 20).toFixed(1)}`;
    case 'yesno': return next() < 0.5 ? 'alpha' : 'bravo';
    case 'comment': return next() < 0.7 ? '' : `note ${n}: ${pick(words)} & ${pick(words)} <ok>`.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
}

export const instanceIdOf = (n: number) => `uuid:00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Submission n: every question answered (comments mostly empty), 0 to 3 members. */
export function submissionXml(n: number): string {
  const next = random(n + 1);
  const groupXml = groupQuestions.map((qs, g) => `<g${g}>${qs.map((q) => `<${q.name}>${answer(q.kind, next, n)}</${q.name}>`).join('')}</g${g}>`).join('');
  const members = Array.from({ length: n % 4 }, () => `<members>${memberQuestions.map((q) => `<${q.name}>${answer(q.kind, next, n)}</${q.name}>`).join('')}</members>`).join('');
  return `<?xml version='1.0' ?><data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" id="${xmlFormId}" version="1">`
    + `${groupXml}${members}<meta><instanceID>${instanceIdOf(n)}</instanceID></meta></data>`;
}

/** Members per submission n (for the expected row count of the repeat table). */
export const membersOf = (n: number) => n % 4;
