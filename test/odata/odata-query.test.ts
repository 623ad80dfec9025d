// $filter, $orderby, paging and the other OData query options, compiled to SQL — checked as text and,
// where semantics matter, evaluated by PostgreSQL over a small inline table.
import test from 'ava';
import pg from 'pg';
import {
  compileFilter, parseOrderBy, orderBySql, afterCursorSql, cursorValuesSql, encodeSkiptoken, decodeSkiptoken,
  parseODataQuery, isTrue, SqlParams, type Column, type ColumnMap,
} from '../../server/formats/odata-query.ts';
import { Problem } from '../../server/errors.ts';

const columns: ColumnMap = new Map<string, Column>([
  ['__id', { sql: 't.instance_id', type: 'text', notNull: true }],
  ['__system/submissionDate', { sql: 't.created_at', type: 'timestamptz', notNull: true }],
  ['__system/updatedAt', { sql: 't.updated_at', type: 'timestamptz' }],
  ['__system/submitterId', { sql: 't.submitter_id', type: 'bigint' }],
  ['__system/reviewState', { sql: 't.review_state', type: 'text' }],
  ['__system/deletedAt', { sql: 't.deleted_at', type: 'timestamptz' }],
  ['age', { sql: 't.age', type: 'bigint' }],
  ['meta/instanceID', { sql: 't.instance_id', type: 'text' }],
  ['birthday', { sql: 't.birthday', type: 'date' }],
  ['alarm', { sql: 't.alarm', type: 'time' }],
  ['ok', { sql: 't.ok', type: 'boolean' }],
]);

function compile(expr: string) {
  const params = new SqlParams();
  const { sql, mentionsDeletedAt } = compileFilter(expr, columns, params);
  return { sql, values: params.values, mentionsDeletedAt };
}

function problemOf(t: any, fn: () => unknown): Problem {
  const err = t.throws(fn) as Problem;
  t.true(err instanceof Problem, String(err));
  return err;
}

// Rows for evaluating compiled filters in PostgreSQL.
const rows = `(values
  (1, 'uuid:a', '2020-01-15T10:20:30.456Z'::timestamptz, null::timestamptz, 5::bigint, null::text, null::timestamptz, 30::bigint, '1990-05-01'::date, '07:30:00'::time, true),
  (2, 'uuid:b', '2020-02-01T00:00:00Z', '2020-03-01T00:00:00Z', 6, 'approved', null, null, null, null, false),
  (3, 'uuid:c', '2021-06-30T23:59:59Z', null, null, 'rejected', '2021-07-01T00:00:00Z', 45, '2001-12-31', '23:00:00', null),
  (4, 'it''s', '2022-01-01T00:00:00Z', null, 5, 'hasIssues', null, 17, null, null, true)
) as t(n, instance_id, created_at, updated_at, submitter_id, review_state, deleted_at, age, birthday, alarm, ok)`;

let pool: pg.Pool | undefined;
test.before(() => {
  const root = process.env.FIELDBASE_TEST_ROOT_URL ?? process.env.DATABASE_URL;
  if (root) pool = new pg.Pool({ connectionString: root, max: 2 });
});
test.after.always(() => pool?.end());

async function matching(t: any, expr: string): Promise<number[]> {
  if (!pool) { t.log('no database: skipped evaluation'); return []; }
  const params = new SqlParams();
  const { sql } = compileFilter(expr, columns, params);
  const client = await pool.connect();
  try {
    await client.query("set time zone 'UTC'");
    const { rows: found } = await client.query(`select n from ${rows} where ${sql} order by n`, params.values);
    return found.map((r) => r.n);
  } finally {
    client.release();
  }
}

test('no filter compiles to true', (t) => {
  t.deepEqual(compileFilter(undefined, columns, new SqlParams()), { sql: 'true', mentionsDeletedAt: false });
  t.deepEqual(compileFilter('  ', columns, new SqlParams()), { sql: 'true', mentionsDeletedAt: false });
});

test('eq on a never-null column compiles to an indexable = with a typed parameter', (t) => {
  t.deepEqual(compile("__id eq 'uuid:a'"), { sql: '(t.instance_id = $1::text)', values: ['uuid:a'], mentionsDeletedAt: false });
});

test('eq on a nullable column keeps null semantics with is not distinct from', (t) => {
  t.deepEqual(compile('__system/submitterId eq 5').sql, '(t.submitter_id is not distinct from $1::bigint)');
  t.deepEqual(compile('__system/submitterId ne 5').sql, '(t.submitter_id is distinct from $1::bigint)');
});

test('null literals compile to is null / is not null', (t) => {
  t.is(compile('__system/reviewState eq null').sql, '(t.review_state is null)');
  t.is(compile('null ne __system/reviewState').sql, '(t.review_state is not null)');
  t.is(compile('null eq null').sql, 'true');
});

test('comparisons, and/or/not and parentheses keep their precedence', (t) => {
  const { sql, values } = compile("(__system/submitterId gt 5 or __system/reviewState eq 'approved') and not (age le 30)");
  t.is(sql, '(((t.submitter_id > $1::bigint) or (t.review_state is not distinct from $2::text)) and (not (t.age <= $3::bigint)))');
  t.deepEqual(values, ['5', 'approved', '30']);
});

test('a date literal against a timestamp is midnight of that date', (t) => {
  t.is(compile('__system/submissionDate lt 2020-02-01').sql, '(t.created_at < $1::date)');
  t.is(compile('__system/submissionDate ge 2020-02-01T00:00:00.000Z').sql, '(t.created_at >= $1::timestamptz)');
});

test('string literals unescape doubled quotes', (t) => {
  t.deepEqual(compile("__id eq 'it''s'").values, ["it's"]);
});

test('functions: now() and the date part extractors', (t) => {
  t.is(compile('year(__system/submissionDate) lt year(now())').sql,
    '(extract(year from t.created_at) < extract(year from now()))');
  t.is(compile('second(__system/submissionDate) eq 30').sql, '(floor(extract(second from t.created_at)) = $1::numeric)');
  t.is(compile('hour(alarm) eq 7').sql, '(extract(hour from t.alarm) is not distinct from $1::numeric)');
  t.is(compile('month(2020-03-04) eq 3').sql, '(extract(month from $1::date) = $2::numeric)');
});

test('$root/Submissions/ paths resolve when the caller allows them (repeat tables)', (t) => {
  const repeat: ColumnMap = new Map([['$root/Submissions/__system/submissionDate', { sql: 's.created_at', type: 'timestamptz' as const }]]);
  const params = new SqlParams();
  t.is(compileFilter('$root/Submissions/__system/submissionDate ge 2020-02-01T00:00:00.000Z', repeat, params).sql,
    '(s.created_at >= $1::timestamptz)');
  const err = problemOf(t, () => compileFilter('__system/submissionDate ge 2020-02-01', repeat, new SqlParams()));
  t.is(err.code, 501.5);
});

test('a filter mentioning __system/deletedAt is reported so deleted rows are not hidden', (t) => {
  t.false(compile('__system/submitterId eq 5').mentionsDeletedAt);
  t.true(compile('__system/deletedAt ne null').mentionsDeletedAt);
  t.true(compile('year(__system/deletedAt) eq 2021 or __id eq null').mentionsDeletedAt);
});

test('parameters start after those the caller already has', (t) => {
  const params = new SqlParams([42, 'x']);
  t.is(compileFilter('age eq 3', columns, params).sql, '(t.age is not distinct from $3::bigint)');
  t.deepEqual(params.values, [42, 'x', '3']);
});

test('unparseable filters fail with 400.18 and the parser reason', (t) => {
  const err = problemOf(t, () => compile('__id eq'));
  t.is(err.code, 400.18);
  t.is(err.message, 'The OData filter expression you provided could not be parsed: Unexpected character at 4');
  t.deepEqual(err.details, { reason: 'Unexpected character at 4' });
});

test('unsupported functions and operators fail with 501.4 and where they are', (t) => {
  const fn = problemOf(t, () => compile("contains(__id,'a')"));
  t.is(fn.code, 501.4);
  t.is(fn.message, 'The given OData filter expression uses features not supported by this server: MethodCallExpression at 0 ("contains(__id,\'a\')")');
  t.deepEqual(fn.details, { at: 0, type: 'MethodCallExpression', text: "contains(__id,'a')" });
  const add = problemOf(t, () => compile('age add 5 gt 3'));
  t.is(add.code, 501.4);
  t.deepEqual(add.details, { at: 0, type: 'AddExpression', text: 'age add 5' });
});

test('fields outside the allow-list fail with 501.5 and their position', (t) => {
  const err = problemOf(t, () => compile("__system/submitterId eq 5 and nickname eq 'x'"));
  t.is(err.code, 501.5);
  t.is(err.message, 'The given OData filter expression references fields not supported by this server: nickname at 30');
  t.deepEqual(err.details, { at: 30, text: 'nickname' });
});

test('comparing incompatible expressions or filtering on a non-boolean fails with 400.18', (t) => {
  t.is(problemOf(t, () => compile('__id eq __system/submissionDate')).code, 400.18);
  t.is(problemOf(t, () => compile('age')).code, 400.18);
  t.is(problemOf(t, () => compile("year(__id) eq 2020")).code, 400.18);
  t.is(compile('ok').sql, 't.ok');
});

test('filters evaluate in PostgreSQL', async (t) => {
  if (!pool) { t.pass(); return; }
  const cases: Array<[string, number[]]> = [
    ["__id eq 'uuid:b'", [2]],
    ['__system/submitterId eq 5', [1, 4]],
    ['__system/submitterId ne 5', [2, 3]],
    ['__system/submitterId eq null', [3]],
    ['not (__system/submitterId eq 5)', [2, 3]],
    ['__system/submissionDate lt 2020-02-01', [1]],
    ['__system/submissionDate le 2020-02-01T00:00:00.000Z', [1, 2]],
    ['__system/submissionDate ge 2021-07-01T01:00:00+02:00', [3, 4]],
    ['year(__system/submissionDate) eq 2020 and month(__system/submissionDate) eq 1', [1]],
    ['day(__system/submissionDate) eq 30 or minute(__system/submissionDate) eq 20', [1, 3]],
    ['hour(__system/submissionDate) eq 23 and second(__system/submissionDate) eq 59', [3]],
    ['second(__system/submissionDate) eq 30', [1]],
    ['year(__system/submissionDate) lt year(now())', [1, 2, 3, 4]],
    ["__system/reviewState eq 'approved' or __system/reviewState eq 'rejected'", [2, 3]],
    ['__system/deletedAt eq null', [1, 2, 4]],
    ['__system/updatedAt gt __system/submissionDate', [2]],
    ['age gt 20 and age lt 40', [1]],
    ['age ge 17.5', [1, 3]],
    ["birthday lt 2000-01-01", [1]],
    ['year(birthday) eq 2001', [3]],
    ['hour(alarm) ge 7', [1, 3]],
    ['alarm lt 12:00:00', [1]],
    ['ok eq true', [1, 4]],
    ['ok', [1, 4]],
    ['not ok', [2]],
    ["__id eq 'it''s'", [4]],
  ];
  for (const [expr, expected] of cases) t.deepEqual(await matching(t, expr), expected, expr);
});

test('$orderby parses comma lists with case-insensitive directions', (t) => {
  const keys = parseOrderBy('__system/submitterId ASC, __system/reviewState desc,__id', columns);
  t.deepEqual(keys.map((k) => [k.sql, k.desc]), [['t.submitter_id', false], ['t.review_state', true], ['t.instance_id', false]]);
  t.is(orderBySql(keys), 't.submitter_id asc nulls first, t.review_state desc nulls last, t.instance_id asc nulls first');
  t.deepEqual(parseOrderBy(undefined, columns), []);
});

test('$orderby on unknown fields or with a bad direction fails with 501.5', (t) => {
  const field = problemOf(t, () => parseOrderBy('nickname desc', columns));
  t.is(field.code, 501.5);
  t.is(field.message, 'The given OData filter expression references fields not supported by this server: nickname');
  t.deepEqual(field.details, { text: 'nickname' });
  t.deepEqual(problemOf(t, () => parseOrderBy('__id sideways', columns)).details, { text: 'sideways' });
  t.is(problemOf(t, () => parseOrderBy('year(__system/submissionDate)', columns)).code, 501.5);
});

test('keyset cursors continue after the cursor row in any order, nulls included', async (t) => {
  if (!pool) { t.pass(); return; }
  const check = async (orderby: string) => {
    const keys = [...parseOrderBy(orderby, columns), { sql: 't.n', type: 'bigint' as const, desc: false }];
    const { rows: all } = await pool!.query(`select n, ${cursorValuesSql(keys)} as cursor from ${rows} order by ${orderBySql(keys)}`);
    for (let i = 0; i < all.length; i++) {
      const params = new SqlParams();
      const after = afterCursorSql(keys, all[i].cursor, params);
      const { rows: rest } = await pool!.query(`select n from ${rows} where ${after} order by ${orderBySql(keys)}`, params.values);
      t.deepEqual(rest.map((r) => r.n), all.slice(i + 1).map((r) => r.n), `${orderby} after row ${all[i].n}`);
    }
  };
  await check('__system/submitterId asc');
  await check('__system/submitterId desc, __system/reviewState asc');
  await check('__system/updatedAt desc');
  await check('__system/submissionDate desc');
});

test('afterCursorSql rejects cursors of the wrong shape with 400.35', (t) => {
  const keys = parseOrderBy('__id', columns);
  t.is(problemOf(t, () => afterCursorSql(keys, [], new SqlParams())).code, 400.35);
  t.is(problemOf(t, () => afterCursorSql(keys, [{ a: 1 }], new SqlParams())).code, 400.35);
});

test('skiptokens are 01 + base64 JSON, and anything else is 400.35', (t) => {
  const token = encodeSkiptoken({ instanceId: 'uuid:a' });
  t.is(token, '01' + Buffer.from('{"instanceId":"uuid:a"}').toString('base64'));
  t.deepEqual(decodeSkiptoken(token), { instanceId: 'uuid:a' });
  for (const bad of ['02abc', '01!!!', '01' + Buffer.from('[1]').toString('base64'), '01' + Buffer.from('42').toString('base64')]) {
    const err = problemOf(t, () => decodeSkiptoken(bad));
    t.is(err.code, 400.35);
    t.is(err.message, 'Invalid $skiptoken');
  }
});

test('query options: paging, counts and booleans in any case', (t) => {
  t.deepEqual(parseODataQuery({}), {
    filter: undefined, orderby: undefined, top: undefined, skip: 0, skiptoken: undefined,
    count: false, wkt: false, expand: false, select: undefined,
  });
  const q = parseODataQuery({ $top: '5', $skip: '10', $count: 'True', $wkt: 'TRUE', $filter: '__id eq \'x\'', $orderby: '__id desc' });
  t.is(q.top, 5);
  t.is(q.skip, 10);
  t.true(q.count);
  t.true(q.wkt);
  t.is(q.filter, "__id eq 'x'");
  t.is(q.orderby, '__id desc');
  t.false(parseODataQuery({ $count: 'false' }).count);
  t.true(isTrue(['true', 'false']));
  t.is(parseODataQuery({ $top: '-3' }).top, 0);
  t.is(parseODataQuery({ $top: 'lots' }).top, undefined);
});

test('$skiptoken replaces $skip', (t) => {
  const q = parseODataQuery({ $skip: '10', $skiptoken: encodeSkiptoken({ instanceId: 'a' }) });
  t.is(q.skip, 0);
  t.deepEqual(q.skiptoken, { instanceId: 'a' });
  t.is(problemOf(t, () => parseODataQuery({ $skiptoken: 'nope' })).code, 400.35);
});

test('$select splits and trims; * selects everything', (t) => {
  t.deepEqual(parseODataQuery({ $select: '__id, age ,meta/instanceID' }).select, ['__id', 'age', 'meta/instanceID']);
  t.is(parseODataQuery({ $select: '*' }).select, undefined);
});

test('$expand supports only *, and not together with $select', (t) => {
  t.true(parseODataQuery({ $expand: '*' }).expand);
  const other = problemOf(t, () => parseODataQuery({ $expand: 'children' }));
  t.is(other.code, 501.6);
  t.is(other.message, 'The given OData expand expression is not supported by this server: "children". Currently, only "$expand=*" is supported.');
  t.false(parseODataQuery({ $expand: '' }).expand);
  t.is(problemOf(t, () => parseODataQuery({ $expand: '*', $select: '*' })).code, 501.11);
  const both = problemOf(t, () => parseODataQuery({ $expand: '*', $select: '__id' }));
  t.is(both.code, 501.11);
  t.is(both.message, "This server doesn't support $select query parameter with $expand.");
});
