// OData query options ($filter, $orderby, $top, $skip, $skiptoken, $count, $select, $expand, $wkt) parsed and
// compiled to parameterised SQL. Pure: the caller supplies the allow-list of OData paths → SQL expressions.
import odataParser from 'odata-v4-parser';
import { Problem } from '../errors.ts';

/** SQL types an allow-listed expression (or a literal) can have. */
export type SqlType = 'text' | 'bigint' | 'numeric' | 'boolean' | 'date' | 'time' | 'timestamptz' | 'integer[]';

/** One allow-listed OData path: its SQL expression (over the caller's aliases) and type. */
export interface Column {
  sql: string;
  type: SqlType;
  /** Never null: lets `eq` compile to `=` (indexable) instead of `is not distinct from`. */
  notNull?: boolean;
}

/** OData path (`__id`, `__system/submissionDate`, `$root/Submissions/__system/…`, `meta/instanceID`) → column. */
export type ColumnMap = ReadonlyMap<string, Column>;

/** Collects bind parameters; `add` returns the `$n` placeholder. */
export class SqlParams {
  readonly values: unknown[] = [];
  constructor(initial: unknown[] = []) { this.values.push(...initial); }
  add(value: unknown, type?: SqlType): string {
    this.values.push(value);
    return type ? `$${this.values.length}::${type}` : `$${this.values.length}`;
  }
}

export const oDataProblems = {
  unparseableFilter: (reason: string) =>
    new Problem(400.18, `The OData filter expression you provided could not be parsed: ${reason}`, { reason }),
  propertyNotFound: (property: string) =>
    new Problem(400.23, `Could not find a property named '${property}'`, { property }),
  unsupportedSelect: (property: string) =>
    new Problem(400.24, `The given OData select property '${property}' uses features not supported by this server.`, { property }),
  repeatIdNotFound: () => new Problem(400.34, 'Record associated with the provided $skiptoken not found.'),
  invalidSkiptoken: () => new Problem(400.35, 'Invalid $skiptoken'),
  unsupportedExpression: (at: number, type: string, text: string) =>
    new Problem(501.4, `The given OData filter expression uses features not supported by this server: ${type} at ${at} ("${text}")`, { at, type, text }),
  unsupportedField: (text: string, at?: number) =>
    new Problem(501.5, `The given OData filter expression references fields not supported by this server: ${text}${at == null ? '' : ` at ${at}`}`,
      at == null ? { text } : { at, text }),
  unsupportedExpand: (text: string) =>
    new Problem(501.6, `The given OData expand expression is not supported by this server: "${text}". Currently, only "$expand=*" is supported.`, { text }),
  selectWithExpand: () => new Problem(501.11, "This server doesn't support $select query parameter with $expand."),
};

////////////////////////////////////////////////////////////////////////////////
// $filter

interface Node { type: string; raw: string; position: number; value: any }

function parseFilter(expr: string): Node {
  try {
    return odataParser.filter(expr) as unknown as Node;
  } catch (err) {
    throw oDataProblems.unparseableFilter((err as Error).message);
  }
}

/** A compiled operand: SQL with a known type, a literal still to be typed by its context, or null. */
type Operand =
  | { kind: 'sql'; sql: string; type: SqlType; notNull: boolean }
  | { kind: 'literal'; value: string; type: SqlType }
  | { kind: 'null' };

const edmTypes: Record<string, SqlType> = {
  'Edm.String': 'text', 'Edm.Guid': 'text', 'Edm.Boolean': 'boolean',
  'Edm.SByte': 'numeric', 'Edm.Byte': 'numeric', 'Edm.Int16': 'numeric', 'Edm.Int32': 'numeric', 'Edm.Int64': 'numeric',
  'Edm.Decimal': 'numeric', 'Edm.Double': 'numeric', 'Edm.Single': 'numeric',
  'Edm.Date': 'date', 'Edm.DateTimeOffset': 'timestamptz', 'Edm.TimeOfDay': 'time',
};

/** Which types compare with which: numbers with numbers, dates with timestamps, the rest with themselves. */
function typeFamily(type: SqlType): string {
  switch (type) {
    case 'bigint': case 'numeric': return 'number';
    case 'date': case 'timestamptz': return 'instant';
    default: return type;
  }
}

const extractFunctions = new Set(['year', 'month', 'day', 'hour', 'minute', 'second']);
const comparisons: Record<string, string> = {
  LesserThanExpression: '<', LesserOrEqualsExpression: '<=', GreaterThanExpression: '>', GreaterOrEqualsExpression: '>=',
};

export interface CompiledFilter {
  /** A boolean SQL expression ('true' when there is no filter). */
  sql: string;
  /** Whether the filter references `__system/deletedAt`: then deleted submissions are not excluded by default. */
  mentionsDeletedAt: boolean;
}

/** Compiles `$filter` against the allow-list. 400.18 when unparseable, 501.4/501.5 for what is not supported. */
export function compileFilter(expr: string | undefined, columns: ColumnMap, params: SqlParams): CompiledFilter {
  if (expr == null || expr.trim() === '') return { sql: 'true', mentionsDeletedAt: false };
  let mentionsDeletedAt = false;

  const literalSql = (operand: Operand, type?: SqlType): string => {
    if (operand.kind === 'sql') return operand.sql;
    if (operand.kind === 'null') return type ? `null::${type}` : 'null';
    return params.add(operand.value, type ?? operand.type);
  };

  const operand = (node: Node): Operand => {
    switch (node.type) {
      case 'FirstMemberExpression':
      case 'RootExpression': {
        const column = columns.get(node.raw);
        if (!column) throw oDataProblems.unsupportedField(node.raw, node.position);
        if (node.raw.endsWith('__system/deletedAt')) mentionsDeletedAt = true;
        return { kind: 'sql', sql: column.sql, type: column.type, notNull: column.notNull === true };
      }
      case 'Literal': {
        if (node.raw === 'null') return { kind: 'null' };
        const type = edmTypes[node.value as string];
        if (!type) throw oDataProblems.unsupportedExpression(node.position, node.type, node.raw);
        const value = type === 'text' && /^'.*'$/s.test(node.raw) ? node.raw.slice(1, -1).replace(/''/g, "'")
          : type === 'numeric' ? node.raw.replace(/INF$/, 'Infinity') : node.raw;
        return { kind: 'literal', value, type };
      }
      case 'MethodCallExpression': return method(node);
      case 'ParenExpression': case 'CommonExpression': return operand(node.value as Node);
      default: return { kind: 'sql', sql: boolean(node), type: 'boolean', notNull: false };
    }
  };

  const method = (node: Node): Operand => {
    const name: string = node.value.method;
    const args: Node[] = node.value.parameters ?? [];
    if (name === 'now' && args.length === 0) return { kind: 'sql', sql: 'now()', type: 'timestamptz', notNull: true };
    if (extractFunctions.has(name) && args.length === 1) {
      const arg = operand(args[0]);
      if (arg.kind === 'null') return { kind: 'null' };
      const type = arg.type;
      if (!['date', 'timestamptz', 'time'].includes(type) || (type === 'time' && !['hour', 'minute', 'second'].includes(name))
        || (type === 'date' && ['hour', 'minute', 'second'].includes(name)))
        throw oDataProblems.unparseableFilter(`${name}() cannot be applied to ${args[0].raw}`);
      const field = name === 'second' ? 'second' : name;
      const source = literalSql(arg);
      // second() is the whole seconds, like OData's second(); extract gives fractions.
      const sql = field === 'second' ? `floor(extract(second from ${source}))` : `extract(${field} from ${source})`;
      return { kind: 'sql', sql, type: 'numeric', notNull: arg.kind === 'literal' || arg.notNull };
    }
    throw oDataProblems.unsupportedExpression(node.position, node.type, node.raw);
  };

  /** Two operands typed against each other: a literal takes the type of the other side. */
  const pair = (node: Node): [Operand, Operand, string, string] => {
    const left = operand(node.value.left);
    const right = operand(node.value.right);
    if (left.kind === 'sql' && right.kind === 'sql' && typeFamily(left.type) !== typeFamily(right.type))
      throw oDataProblems.unparseableFilter(`cannot compare ${node.value.left.raw} (${left.type}) with ${node.value.right.raw} (${right.type})`);
    const leftType = right.kind === 'sql' && left.kind === 'literal' ? castFor(left, right.type) : undefined;
    const rightType = left.kind === 'sql' && right.kind === 'literal' ? castFor(right, left.type) : undefined;
    return [left, right, literalSql(left, leftType ?? (right.kind === 'sql' ? right.type : undefined)),
      literalSql(right, rightType ?? (left.kind === 'sql' ? left.type : undefined))];
  };

  const equality = (node: Node, negate: boolean): string => {
    const [left, right, l, r] = pair(node);
    if (left.kind === 'null' && right.kind === 'null') return negate ? 'false' : 'true';
    if (left.kind === 'null' || right.kind === 'null') return `(${left.kind === 'null' ? r : l} is ${negate ? 'not ' : ''}null)`;
    const neverNull = (o: Operand) => o.kind === 'literal' || (o.kind === 'sql' && o.notNull);
    if (neverNull(left) && neverNull(right)) return `(${l} ${negate ? '<>' : '='} ${r})`;
    return `(${l} is ${negate ? '' : 'not '}distinct from ${r})`;
  };

  const boolean = (node: Node): string => {
    switch (node.type) {
      case 'EqualsExpression': return equality(node, false);
      case 'NotEqualsExpression': return equality(node, true);
      case 'LesserThanExpression': case 'LesserOrEqualsExpression':
      case 'GreaterThanExpression': case 'GreaterOrEqualsExpression': {
        const [, , l, r] = pair(node);
        return `(${l} ${comparisons[node.type]} ${r})`;
      }
      case 'AndExpression': return `(${boolean(node.value.left)} and ${boolean(node.value.right)})`;
      case 'OrExpression': return `(${boolean(node.value.left)} or ${boolean(node.value.right)})`;
      case 'NotExpression': return `(not ${boolean(node.value)})`;
      case 'BoolParenExpression': case 'CommonExpression': return boolean(node.value);
      case 'FirstMemberExpression': case 'RootExpression': case 'Literal': case 'MethodCallExpression': case 'ParenExpression': {
        const o = operand(node);
        if (o.kind === 'null') return 'null::boolean';
        if (o.type !== 'boolean') throw oDataProblems.unparseableFilter(`${node.raw} is not a boolean expression`);
        return literalSql(o, 'boolean');
      }
      default: throw oDataProblems.unsupportedExpression(node.position, node.type, node.raw);
    }
  };

  const sql = boolean(parseFilter(expr));
  return { sql, mentionsDeletedAt };
}

/** A date literal against a timestamp keeps its own type (midnight); otherwise the other side's type rules. */
function castFor(literal: { type: SqlType; value: string }, other: SqlType): SqlType {
  if (literal.type === 'date' && other === 'timestamptz') return 'date';
  if (other === 'integer[]') return literal.type;
  // 17.5 against an integer column compares as a number; 17 stays an (indexable) bigint.
  if (literal.type === 'numeric' && other === 'bigint' && !/^-?\d+$/.test(literal.value)) return 'numeric';
  return other;
}

////////////////////////////////////////////////////////////////////////////////
// $orderby and keyset cursors

export interface SortKey extends Column { desc: boolean }

/** Parses `$orderby` (comma list of allow-listed paths, each optionally asc/desc, case-insensitive). */
export function parseOrderBy(expr: string | undefined, columns: ColumnMap): SortKey[] {
  if (expr == null || expr.trim() === '') return [];
  return expr.split(',').map((clause) => {
    const [path, direction, ...rest] = clause.trim().split(/\s+/);
    const column = columns.get(path);
    if (!column) throw oDataProblems.unsupportedField(path);
    if (direction != null && !/^(asc|desc)$/i.test(direction)) throw oDataProblems.unsupportedField(direction);
    if (rest.length > 0) throw oDataProblems.unsupportedField(rest.join(' '));
    return { ...column, desc: direction?.toLowerCase() === 'desc' };
  });
}

/** SQL `order by` list: ascending puts nulls first, descending last (as Central does). */
export function orderBySql(keys: SortKey[]): string {
  return keys.map((k) => `${k.sql} ${k.desc ? 'desc nulls last' : 'asc nulls first'}`).join(', ');
}

/**
 * The predicate selecting rows strictly after the cursor row in `keys` order, given that row's key values
 * (as produced by `cursorValuesSql`). Nulls sort like `orderBySql` says.
 */
export function afterCursorSql(keys: SortKey[], values: unknown[], params: SqlParams): string {
  if (values.length !== keys.length) throw oDataProblems.invalidSkiptoken();
  const clause = (i: number): string => {
    const key = keys[i];
    const value = values[i];
    if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean' && !Array.isArray(value))
      throw oDataProblems.invalidSkiptoken();
    const bound = value === null ? null : params.add(key.type === 'integer[]' ? `{${(value as unknown[]).map(Number).join(',')}}` : value, key.type);
    let after: string;
    let equal: string;
    if (bound === null) {
      after = key.desc ? 'false' : `${key.sql} is not null`;
      equal = `${key.sql} is null`;
    } else {
      after = key.desc ? `(${key.sql} < ${bound} or ${key.sql} is null)` : `${key.sql} > ${bound}`;
      equal = `${key.sql} = ${bound}`;
    }
    if (i === keys.length - 1) return `(${after})`;
    return `(${after} or (${equal} and ${clause(i + 1)}))`;
  };
  return keys.length === 0 ? 'true' : clause(0);
}

/** A SQL expression giving a row's key values as a json array, to put in the next $skiptoken. */
export function cursorValuesSql(keys: SortKey[]): string {
  return `json_build_array(${keys.map((k) => k.sql).join(', ')})`;
}

////////////////////////////////////////////////////////////////////////////////
// $skiptoken: '01' + base64(JSON), like Central's.

export function encodeSkiptoken(data: Record<string, unknown>): string {
  return '01' + Buffer.from(JSON.stringify(data), 'utf8').toString('base64');
}

export function decodeSkiptoken(token: string): Record<string, unknown> {
  if (!token.startsWith('01')) throw oDataProblems.invalidSkiptoken();
  try {
    const parsed = JSON.parse(Buffer.from(token.slice(2), 'base64').toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed;
  } catch {
    throw oDataProblems.invalidSkiptoken();
  }
}

////////////////////////////////////////////////////////////////////////////////
// The request's query options

export interface ODataQuery {
  filter?: string;
  orderby?: string;
  /** Rows to return at most; undefined = all. */
  top?: number;
  skip: number;
  skiptoken?: Record<string, unknown>;
  count: boolean;
  wkt: boolean;
  expand: boolean;
  /** The $select list, trimmed; undefined when absent or `*`. */
  select?: string[];
}

/** Query values as express's parser gives them: a repeated parameter counts once (the first). */
function single(value: unknown): string | undefined {
  if (Array.isArray(value)) return single(value[0]);
  return typeof value === 'string' ? value : undefined;
}

/** Booleans in query strings are case-insensitive (`true`, `True`: pyodk sends Python's). */
export function isTrue(value: unknown): boolean {
  return single(value)?.toLowerCase() === 'true';
}

function nonNegativeInt(value: string | undefined): number | undefined {
  if (value == null) return undefined;
  const parsed = parseInt(value, 10);
  return Number.isNaN(parsed) ? undefined : Math.max(0, parsed);
}

/** Reads the OData system query options. Errors: 501.6 ($expand other than *), 501.11 ($select with $expand), 400.35. */
export function parseODataQuery(query: Record<string, unknown>): ODataQuery {
  const expandText = single(query.$expand) || undefined;
  if (expandText !== undefined && expandText !== '*') throw oDataProblems.unsupportedExpand(expandText);
  const selectText = single(query.$select) || undefined;
  if (selectText !== undefined && expandText !== undefined) throw oDataProblems.selectWithExpand();
  const select = selectText === undefined || selectText.trim() === '*' ? undefined
    : selectText.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const skiptokenText = single(query.$skiptoken);
  const skiptoken = skiptokenText == null || skiptokenText === '' ? undefined : decodeSkiptoken(skiptokenText);
  return {
    filter: single(query.$filter),
    orderby: single(query.$orderby),
    top: nonNegativeInt(single(query.$top)),
    skip: skiptoken ? 0 : nonNegativeInt(single(query.$skip)) ?? 0,
    skiptoken,
    count: isTrue(query.$count),
    wkt: isTrue(query.$wkt),
    expand: expandText === '*',
    select,
  };
}
