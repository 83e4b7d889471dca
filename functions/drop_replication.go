package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/sql"
)

// dropReplication is drop_replication(): slot, publication, state and,
// when asked, the destination tables.
func dropReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	slot, err := requiredString(args, "slot_name")
	if err != nil {
		return nil, err
	}
	pub, err := requiredString(args, "pub_name")
	if err != nil {
		return nil, err
	}
	dropped, err := env.Repl.Drop(ctx, slot, pub, optBool(args, "drop_tables", false))
	if err != nil {
		return nil, err
	}
	if dropped == nil {
		dropped = []string{}
	}
	return [][]any{{slot, pub, dropped}}, nil
}
