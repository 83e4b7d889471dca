package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/sql"
)

// stopReplication is stop_replication(): drain and end a slot's continuous
// replication.
func stopReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	slot, err := requiredString(args, "slot_name")
	if err != nil {
		return nil, err
	}
	st, err := env.Repl.Stop(ctx, slot)
	if err != nil {
		return nil, err
	}
	return [][]any{continuousRow(st)}, nil
}
