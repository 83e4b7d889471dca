package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Destination is a Postgres database (or a Postgres-compatible engine)
// that holds the replicated tables and, in schema _pgcdc, the replication
// state.
type Destination struct {
	pool *pgxpool.Pool
	// config is the parsed connection string, which may hold a password:
	// never log it.
	config *pgconn.Config
}

var _ replica.Destination = (*Destination)(nil)

// ParseURL parses a destination connection string (URL or key=value). A
// parse error never repeats the string, which may hold a password.
func ParseURL(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres destination: invalid connection string (it is not shown because it may contain a password)")
	}
	return cfg, nil
}

// Open connects to the destination and creates or migrates pgcdc's state
// schema.
func Open(ctx context.Context, url string) (*Destination, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "pgcdc"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: %w", err)
	}
	d := &Destination{pool: pool, config: &cfg.ConnConfig.Config}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres destination: %w", err)
	}
	return d, nil
}

// Config is the destination's connection configuration, for the proxy's
// upstream sessions.
func (d *Destination) Config() *pgconn.Config { return d.config }

// Close closes the destination's connections.
func (d *Destination) Close() error {
	d.pool.Close()
	return nil
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
