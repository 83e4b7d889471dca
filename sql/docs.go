package sql

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Docs renders the Markdown reference of every function, from the catalog
// alone, so the documentation cannot drift from what Classify accepts. It is
// the source of docs/functions.md.
func (c *Catalog) Docs() string {
	var b strings.Builder
	b.WriteString("# SQL functions\n\n")
	b.WriteString("<!-- Generated from sql/catalog.sql by (*sql.Catalog).Docs. Do not edit. -->\n\n")
	fmt.Fprintf(&b, "pgcdc serves these functions in the `%s` schema; every other statement goes to the\n", Schema)
	b.WriteString("destination. Call them as `SELECT * FROM f(...)`, `SELECT col, ... FROM f(...)` or\n")
	fmt.Fprintf(&b, "`SELECT f(...)`, with or without the `%s.` prefix. Arguments are constants, casts,\n", Schema)
	b.WriteString("`ARRAY[...]` or `$n` parameters, given by position or by name (`name => value`).\n\n")
	b.WriteString("Over the DuckDB replica a call can also be a FROM item of a larger statement: an aggregate,\n")
	b.WriteString("`WHERE`, `ORDER BY`, a join with replica tables, a `WITH` query or `INSERT ... SELECT`, as in\n")
	b.WriteString("`SELECT count(*) FROM replicate('s', 'p')`. The calls run first, each once; then the statement\n")
	b.WriteString("runs on the replica with their rows in their place. A call where how often it runs would be up\n")
	b.WriteString("to the query plan (a subquery in `WHERE`, the select list of a query with `FROM`, `LATERAL`)\n")
	b.WriteString("is refused with 0A000. See [compatibility.md](compatibility.md#calling-pgcdcs-functions).\n\n")
	for _, fn := range c.Functions {
		fmt.Fprintf(&b, "- [`%s`](#%s)\n", fn.Name, fn.Name)
	}
	for _, fn := range c.Functions {
		fmt.Fprintf(&b, "\n## %s\n\n", fn.Name)
		b.WriteString("```sql\n" + fn.declaration() + "\n```\n\n")
		if fn.Comment != "" {
			b.WriteString(strings.TrimSpace(fn.Comment) + "\n\n")
		}
		b.WriteString("### Parameters\n\n")
		b.WriteString("| Name | Type | Default |\n|------|------|---------|\n")
		for _, p := range fn.Params {
			def := "required"
			if p.HasDefault {
				def = "`" + sqlLiteral(p.Default) + "`"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", p.Name, p.Type.Name, def)
		}
		b.WriteString("\n### Result columns\n\n")
		b.WriteString("| Name | Type |\n|------|------|\n")
		for _, rc := range fn.Result {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", rc.Name, rc.Type.Name)
		}
	}
	return b.String()
}

// declaration is the function's header laid out one parameter per line.
func (f *Function) declaration() string {
	var b strings.Builder
	b.WriteString(Schema + "." + f.Name + "(\n")
	for i, p := range f.Params {
		b.WriteString("    " + p.Name + " " + p.Type.Name)
		if p.HasDefault {
			b.WriteString(" DEFAULT " + sqlLiteral(p.Default))
		}
		if i < len(f.Params)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(") RETURNS TABLE (\n")
	for i, rc := range f.Result {
		b.WriteString("    " + rc.Name + " " + rc.Type.Name)
		if i < len(f.Result)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(")")
	return b.String()
}

// sqlLiteral writes a bound value back as SQL, for signatures and docs.
func sqlLiteral(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return quoteLiteral(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case []string:
		return quoteLiteral(FormatTextArray(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return quoteLiteral(string(b))
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
