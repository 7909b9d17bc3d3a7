/**
 * Kysely-built SQL compiled once per query shape, for the SQLite group-commit path.
 *
 * Building and compiling a Kysely query costs ~10–25 µs (node visitors, identifier quoting),
 * several times what better-sqlite3 then takes to run the cached statement; issuance runs four
 * such queries per certificate. A shape is built once with a placeholder for each value, and
 * compiled; afterwards only the parameter list is made. Kysely still writes the SQL (same schema
 * types, same dialect), so the text never drifts from the Kysely path the other backends use.
 *
 * A placeholder is a string no caller can produce by accident; every compiled parameter is
 * either one of them (replaced by the named value) or a constant of the shape (kept as built).
 */
import type { CompiledQuery } from 'kysely';

export interface Compilable {
  compile(): CompiledQuery;
}

const PLACEHOLDER_PREFIX = '\u0000tlsmesh-query-shape:';

/** One compiled parameter: a named value, or a constant written into the shape. */
type Parameter = { name: string } | { constant: unknown };

export interface CompiledShape {
  sql: string;
  parameters: readonly Parameter[];
}

/**
 * Builds `build`'s query with placeholders and compiles it. `build` receives one placeholder per
 * name (typed `never`, so it fits any column) and must use each value as a parameter.
 */
export function compileShape<Name extends string>(names: readonly Name[], build: (values: Record<Name, never>) => Compilable): CompiledShape {
  const placeholders = Object.fromEntries(names.map((name) => [name, `${PLACEHOLDER_PREFIX}${name}`])) as unknown as Record<Name, never>;
  const compiled = build(placeholders).compile();
  const seen = new Set<string>();
  const parameters = compiled.parameters.map((value): Parameter => {
    if (typeof value === 'string' && value.startsWith(PLACEHOLDER_PREFIX)) {
      const name = value.slice(PLACEHOLDER_PREFIX.length);
      seen.add(name);
      return { name };
    }
    return { constant: value };
  });
  const unused = names.filter((name) => !seen.has(name));
  // A value the query does not carry as a parameter (inlined, or dropped) would be silently ignored.
  if (unused.length > 0) throw new Error(`query shape: ${unused.join(', ')} did not become parameters of: ${compiled.sql}`);
  return { sql: compiled.sql, parameters };
}

/** The parameter list of `shape` for these values. */
export function shapeParameters(shape: CompiledShape, values: Readonly<Record<string, unknown>>): unknown[] {
  return shape.parameters.map((parameter) => ('name' in parameter ? values[parameter.name] : parameter.constant));
}

/** A query to compile once per store: its value names and how Kysely builds it. */
export interface QueryShape<Db, Name extends string> {
  readonly names: readonly Name[];
  readonly build: (db: Db, values: Record<Name, never>) => Compilable;
}

export const queryShape = <Db, Name extends string>(names: readonly Name[], build: (db: Db, values: Record<Name, never>) => Compilable): QueryShape<Db, Name> => ({ names, build });
