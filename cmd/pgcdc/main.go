// Command pgcdc serves the Postgres wire protocol in front of a replica that
// pgcdc keeps current from a source Postgres by logical replication.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/pgcdc/pgcdc/sql"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "pgcdc:", err)
			os.Exit(1)
		}
	}
}

func run(ctx context.Context, args []string) error {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		c := &ServeCommand{}
		if err := c.ParseFlags(args); err != nil {
			return err
		}
		return c.Run(ctx)
	case "demo":
		c := &DemoCommand{}
		if err := c.ParseFlags(args); err != nil {
			return err
		}
		return c.Run(ctx)
	case "version":
		fmt.Println("pgcdc", Version)
		return nil
	case "docs":
		// docs/functions.md is this output; a test keeps the two equal.
		c, err := sql.LoadCatalog()
		if err != nil {
			return err
		}
		fmt.Print(c.Docs())
		return nil
	case "", "help", "-h", "-help", "--help":
		usage()
		if cmd == "" {
			return errors.New("no command given")
		}
		return nil
	default:
		usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `pgcdc keeps a replica of Postgres tables current through logical replication
and serves it over the Postgres wire protocol.

Usage:
  pgcdc serve [flags]    run the server (see 'pgcdc serve --help' for every flag)
  pgcdc demo             try it: a throwaway source Postgres with a live workload,
                         replicated continuously into a new DuckDB file and served
  pgcdc version          print the version
  pgcdc docs             print the function reference (docs/functions.md)

Connect with any Postgres client, e.g. psql -h 127.0.0.1 -p 6543, and run
  SELECT * FROM init_replication('slot', 'pub', schema_name => 'public');
  SELECT * FROM replicate('slot', 'pub');            -- once, or
  SELECT * FROM start_replication('slot', 'pub');    -- continuously
`)
}
