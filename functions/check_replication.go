package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// checkReplication is check_replication(): the preflight of
// init_replication, one row per finding.
func checkReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	o := replicator.CheckOptions{Schema: optString(args, "schema_name", "public"), Publish: optString(args, "publish", "")}
	if v, ok := args["table_names"].([]string); ok {
		if len(v) == 0 {
			return nil, argError("table_names must not be empty (NULL checks the whole schema)")
		}
		for _, t := range v {
			if t == "" {
				return nil, argError("table_names must not contain empty or NULL names")
			}
		}
		o.Tables = v
	}
	found, err := env.Repl.Check(ctx, o)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(found))
	for i, f := range found {
		rows[i] = []any{f.Severity, f.Check, nullIfEmpty(f.Table), f.Detail, nullIfEmpty(f.Fix)}
	}
	return rows, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
