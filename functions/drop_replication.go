package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// dropReplication is drop_replication(): slot, publication, state and,
// when asked, the destination tables.
func dropReplication(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error) {
	var o replicator.DropOptions
	var err error
	if o.Slot, err = requiredString(args, "slot_name"); err != nil {
		return nil, err
	}
	if o.Publication, err = requiredString(args, "pub_name"); err != nil {
		return nil, err
	}
	o.DropTables = optBool(args, "drop_tables", false)
	o.Progress = notice
	dropped, err := env.Repl.Drop(ctx, o)
	if err != nil {
		return nil, err
	}
	return [][]any{{o.Slot, o.Publication, tableNames(dropped)}}, nil
}

// tableNames renders destination tables for a text[] column, quoting each
// part the way Postgres's quote_ident would when it needs it, so that a
// name holding a dot cannot be mistaken for schema and table.
func tableNames(ts []replica.TableName) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = sql.QuoteIdentIfNeeded(t.Schema) + "." + sql.QuoteIdentIfNeeded(t.Name)
	}
	return out
}
