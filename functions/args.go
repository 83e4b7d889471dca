package functions

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// argError is a bad argument value: SQLSTATE 22023.
func argError(format string, a ...any) error {
	return &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: fmt.Sprintf(format, a...)}
}

func requiredString(args sql.Args, name string) (string, error) {
	v, ok := args[name].(string)
	if !ok || args[name] == nil {
		return "", &pgconn.PgError{Severity: "ERROR", Code: "22004", Message: fmt.Sprintf("%s must not be NULL", name)}
	}
	return v, nil
}

func optString(args sql.Args, name, def string) string {
	if v, ok := args[name].(string); ok {
		return v
	}
	return def
}

func optBool(args sql.Args, name string, def bool) bool {
	if v, ok := args[name].(bool); ok {
		return v
	}
	return def
}

func optInt(args sql.Args, name string, def int64) int64 {
	switch v := args[name].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int:
		return int64(v)
	}
	return def
}

// tableOptions reads include_columns ({"table": ["col", ...]}) and columns
// ({"table": {"col": {"data_type": "double"}}}) in dlt's shapes.
func tableOptions(args sql.Args) (replicator.TableOptions, error) {
	var o replicator.TableOptions
	if raw, ok := args["include_columns"].(map[string]any); ok {
		o.IncludeColumns = map[string][]string{}
		for _, table := range slices.Sorted(maps.Keys(raw)) {
			list, ok := raw[table].([]any)
			if !ok {
				return o, argError("include_columns: %q must map to a JSON array of column names", table)
			}
			for _, c := range list {
				s, ok := c.(string)
				if !ok {
					return o, argError("include_columns: %q lists a non-string column %v", table, c)
				}
				o.IncludeColumns[table] = append(o.IncludeColumns[table], s)
			}
		}
	}
	if raw, ok := args["columns"].(map[string]any); ok {
		o.Hints = map[string]map[string]replica.TypeHint{}
		for _, table := range slices.Sorted(maps.Keys(raw)) {
			cols, ok := raw[table].(map[string]any)
			if !ok {
				return o, argError("columns: %q must map to a JSON object of column hints", table)
			}
			o.Hints[table] = map[string]replica.TypeHint{}
			for _, col := range slices.Sorted(maps.Keys(cols)) {
				h, ok := cols[col].(map[string]any)
				if !ok {
					return o, argError("columns: %s.%s must be a JSON object such as {\"data_type\": \"double\"}", table, col)
				}
				var hint replica.TypeHint
				typed := false // a key that decides the stored type was given
				for _, k := range slices.Sorted(maps.Keys(h)) {
					switch k {
					case "data_type":
						s, ok := h[k].(string)
						if !ok {
							return o, argError("columns: %s.%s: data_type must be a string", table, col)
						}
						hint.DataType, typed = s, true
					case "precision", "scale":
						n, ok := h[k].(json.Number)
						if !ok {
							return o, argError("columns: %s.%s: %s must be a number", table, col, k)
						}
						i, err := n.Int64()
						if err != nil || i < 0 || i > 1000 {
							return o, argError("columns: %s.%s: %s must be a small whole number", table, col, k)
						}
						if k == "precision" {
							hint.Precision = int(i)
						} else {
							hint.Scale = int(i)
						}
						typed = true
					case "timezone":
						b, ok := h[k].(bool)
						if !ok {
							return o, argError("columns: %s.%s: timezone must be true or false", table, col)
						}
						hint.Timezone, typed = &b, true
					case "nullable", "primary_key", "variant":
						// Read and ignored (docs/semantics.md): a replica's
						// columns take NULL for any change the source sends
						// (a delete's key-only row, a soft delete), its key is
						// the source's replica identity, and variant marks
						// columns dlt itself creates for values of another
						// type, which a typed source never sends.
						if _, ok := h[k].(bool); !ok {
							return o, argError("columns: %s.%s: %s must be true or false", table, col, k)
						}
					case "name":
						// dlt repeats the column's name in its schema; it
						// cannot rename one.
						if n, ok := h[k].(string); !ok || n != col {
							return o, argError("columns: %s.%s: name must be the column's own name, %q", table, col, col)
						}
					case "description":
						// Kept by dlt as documentation only; pgcdc stores
						// its own bookkeeping in column comments.
						if _, ok := h[k].(string); !ok {
							return o, argError("columns: %s.%s: description must be a string", table, col)
						}
					default:
						return o, argError("columns: %s.%s: unknown hint %q (expected data_type, precision, scale, timezone, nullable, primary_key, variant, name or description)", table, col, k)
					}
				}
				if !typed {
					continue // nothing that changes the stored type
				}
				if err := hint.Validate(); err != nil {
					return o, argError("%v", err)
				}
				o.Hints[table][col] = hint
			}
		}
	}
	return o, nil
}
