package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// replicate is replicate(): consume the slot up to the current WAL end.
func replicate(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error) {
	o, err := replicateOptions(args)
	if err != nil {
		return nil, err
	}
	o.Progress = notice
	stats, err := env.Repl.Replicate(ctx, o)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(stats))
	for i, s := range stats {
		rows[i] = []any{s.Table, s.Inserts, s.Updates, s.Deletes, s.Truncates,
			replicator.FormatLSN(s.StartLSN), replicator.FormatLSN(s.EndLSN)}
	}
	return rows, nil
}

// replicateOptions reads the arguments replicate() and start_replication()
// share.
func replicateOptions(args sql.Args) (replicator.ReplicateOptions, error) {
	var o replicator.ReplicateOptions
	var err error
	if o.Slot, err = requiredString(args, "slot_name"); err != nil {
		return o, err
	}
	if o.Publication, err = requiredString(args, "pub_name"); err != nil {
		return o, err
	}
	if o.TableOptions, err = tableOptions(args); err != nil {
		return o, err
	}
	n := optInt(args, "target_batch_size", 1000)
	if n < 1 || n > replicator.MaxBatchSize {
		return o, argError("target_batch_size must be between 1 and %d, got %d", replicator.MaxBatchSize, n)
	}
	o.BatchSize = int(n)
	o.FlushSlot = optBool(args, "flush_slot", true)
	o.Dataset = optString(args, "dataset_name", "")
	switch mode := optString(args, "delete_mode", "hard"); mode {
	case "hard":
	case "soft":
		o.SoftDelete = true
	default:
		return o, argError("delete_mode must be 'hard' or 'soft', got %q", mode)
	}
	return o, nil
}
