package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// verifyReplication is verify_replication(): one row per table, equal or
// different at one consistent point.
func verifyReplication(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error) {
	var o replicator.VerifyOptions
	var err error
	if o.Slot, err = requiredString(args, "slot_name"); err != nil {
		return nil, err
	}
	o.Table = optString(args, "table_name", "")
	switch mode := optString(args, "delete_mode", "hard"); mode {
	case "hard":
	case "soft":
		o.SoftDelete = true
	default:
		return nil, argError("delete_mode must be 'hard' or 'soft', got %q", mode)
	}
	o.Progress = notice
	res, err := env.Repl.Verify(ctx, o)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(res))
	for i, r := range res {
		verdict := "different"
		if r.Equal {
			verdict = "equal"
		}
		keys := r.DifferingKeys
		if keys == nil {
			keys = []string{}
		}
		rows[i] = []any{r.Table, verdict, r.SourceRows, r.ReplicaRows, keys}
	}
	return rows, nil
}
