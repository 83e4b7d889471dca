package replicator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// CheckOptions are check_replication's arguments.
type CheckOptions struct {
	Schema string
	// Tables are the tables init_replication would be given; nil is the
	// whole schema.
	Tables []string
	// Publish is the publish list init_replication would be given; "" is
	// Postgres's default (insert, update, delete, truncate).
	Publish string
}

// Finding is one row of check_replication().
type Finding struct {
	Severity string // SeverityError, SeverityWarning or SeverityInfo
	Check    string // what was checked, a short stable name
	Table    string // schema.table, "" for the server and the login
	Detail   string
	Fix      string
}

// Severities of a Finding.
const (
	SeverityError   = "error"   // init_replication or replicate() will fail, or the source will refuse writes
	SeverityWarning = "warning" // it works, with a cost or a surprise
	SeverityInfo    = "info"
)

// wideFullIdentity is where REPLICA IDENTITY FULL starts to cost: every
// update and delete writes the whole old row to the WAL.
const (
	wideColumns  = 30
	wideRowBytes = 2048
)

// Check is a preflight for init_replication: it reads the source's
// settings, the login's privileges and the tables, and reports what will
// fail or cost, with the fix. It creates nothing.
func (r *Replicator) Check(ctx context.Context, o CheckOptions) ([]Finding, error) {
	if err := validateName("schema_name", o.Schema); err != nil {
		return nil, err
	}
	pub := publication{Insert: true, Update: true, Delete: true, Truncate: true}
	if o.Publish != "" {
		var err error
		if _, pub, err = parsePublish(o.Publish); err != nil {
			return nil, err
		}
	}
	conn, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var out []Finding
	add := func(sev, check, table, detail, fix string) {
		out = append(out, Finding{Severity: sev, Check: check, Table: table, Detail: detail, Fix: fix})
	}

	// The server.
	var (
		version                         int
		walLevel, keepSize              string
		maxSlots, usedSlots             int
		maxSenders, usedSenders         int
		superuser, replication, rdsRepl bool
		role                            string
	)
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('wal_level'),
		current_setting('max_slot_wal_keep_size'),
		current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
		current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
		r.rolsuper, r.rolreplication,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') AND pg_has_role(current_user, 'rds_replication', 'MEMBER'),
		current_user
		FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&version, &walLevel, &keepSize, &maxSlots, &usedSlots, &maxSenders, &usedSenders, &superuser, &replication, &rdsRepl, &role)
	if err != nil {
		return nil, sourceError("reading the source's settings", err)
	}
	if walLevel != "logical" {
		add(SeverityError, "wal_level", "", fmt.Sprintf("wal_level is %s; logical replication needs logical", walLevel),
			"ALTER SYSTEM SET wal_level = logical; then restart the source (on RDS: rds.logical_replication = 1 in the parameter group).")
	}
	if free := maxSlots - usedSlots; free < 1 {
		add(SeverityError, "max_replication_slots", "", fmt.Sprintf("all %d replication slots are in use", maxSlots),
			"Drop an unused slot (pg_drop_replication_slot) or raise max_replication_slots and restart the source.")
	} else if free < 2 {
		add(SeverityWarning, "max_replication_slots", "", fmt.Sprintf("%d of %d replication slots free; verify_replication needs a second, temporary one", free, maxSlots),
			"Raise max_replication_slots and restart the source.")
	}
	if free := maxSenders - usedSenders; free < 1 {
		add(SeverityError, "max_wal_senders", "", fmt.Sprintf("all %d WAL senders are in use", maxSenders),
			"Raise max_wal_senders and restart the source.")
	}
	if keepSize == "-1" {
		add(SeverityWarning, "max_slot_wal_keep_size", "", "max_slot_wal_keep_size is unlimited: a slot nobody replicates keeps WAL until the source's disk fills",
			"ALTER SYSTEM SET max_slot_wal_keep_size = '50GB' (a size the disk can hold); SELECT pg_reload_conf(). A slot that falls further behind is lost and must be re-created.")
	}
	if !superuser && !replication && !rdsRepl {
		add(SeverityError, "replication_privilege", "", fmt.Sprintf("role %s has neither REPLICATION nor rds_replication: it cannot create or read a replication slot", quoteIdent(role)),
			fmt.Sprintf("ALTER ROLE %s REPLICATION; (on RDS: GRANT rds_replication TO %s;)", quoteIdent(role), quoteIdent(role)))
	}
	if o.Tables == nil && !superuser {
		add(SeverityError, "publication_privilege", "", fmt.Sprintf("publishing the whole schema %s (FOR TABLES IN SCHEMA) needs a superuser", o.Schema),
			"Name the tables in table_names, or run init_replication as a superuser.")
	}

	// The tables.
	var names []string
	if o.Tables == nil {
		if names, err = listTables(ctx, conn, o.Schema); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			add(SeverityWarning, "tables", "", fmt.Sprintf("schema %s has no tables", o.Schema), "Create the tables first, or check schema_name.")
		}
	} else {
		names = o.Tables
	}
	var totalRows, totalBytes int64
	unknownRows := false
	for _, name := range names {
		schema, table := o.Schema, name
		if i := strings.IndexByte(name, '.'); i > 0 && o.Tables != nil {
			schema, table = name[:i], name[i+1:]
		}
		qualified := schema + "." + table
		var t tableFacts
		err := conn.QueryRow(ctx, `SELECT c.relkind, c.relreplident, pg_has_role(c.relowner, 'USAGE'), has_table_privilege(c.oid, 'SELECT'),
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident),
			(SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int,
			COALESCE((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
				WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''), ''),
			c.reltuples::int8, pg_total_relation_size(c.oid), pg_get_userbyid(c.relowner)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, table).
			Scan(&t.kind, &t.identity, &t.owner, &t.canSelect, &t.hasPK, &t.hasIdentIndex, &t.columns, &t.generated, &t.rows, &t.bytes, &t.ownerName)
		if err == pgx.ErrNoRows {
			add(SeverityError, "table", qualified, fmt.Sprintf("table %s does not exist", qualified), "Check schema_name and table_names.")
			continue
		}
		if err != nil {
			return nil, sourceError("reading table "+qualified, err)
		}
		q := ident(schema, table)
		if !t.owner && !superuser {
			add(SeverityError, "table_owner", qualified, fmt.Sprintf("role %s does not own %s (owner: %s): it cannot add it to a publication", quoteIdent(role), qualified, t.ownerName),
				fmt.Sprintf("GRANT %s TO %s; or run init_replication as the owner.", quoteIdent(t.ownerName), quoteIdent(role)))
		}
		if !t.canSelect {
			add(SeverityError, "select_privilege", qualified, fmt.Sprintf("role %s cannot SELECT from %s: the snapshot cannot read it", quoteIdent(role), qualified),
				fmt.Sprintf("GRANT SELECT ON %s TO %s;", q, quoteIdent(role)))
		}
		changes := pub.Update || pub.Delete
		switch {
		case t.identity == 'n' && changes:
			add(SeverityError, "replica_identity", qualified, fmt.Sprintf("%s has REPLICA IDENTITY NOTHING: once published, its UPDATEs and DELETEs fail on the source", qualified),
				fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (...); or ALTER TABLE %s REPLICA IDENTITY FULL;", q, q))
		case t.identity == 'd' && !t.hasPK && changes:
			add(SeverityError, "replica_identity", qualified, fmt.Sprintf("%s has no primary key: once published, its UPDATEs and DELETEs fail on the source", qualified),
				fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (...); or ALTER TABLE %s REPLICA IDENTITY FULL; or publish => 'insert'", q, q))
		case t.identity == 'i' && !t.hasIdentIndex && changes:
			add(SeverityError, "replica_identity", qualified, fmt.Sprintf("the replica identity index of %s is gone: its UPDATEs and DELETEs fail on the source", qualified),
				fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY USING INDEX ...;", q))
		case t.identity == 'f':
			width := int64(0)
			if t.rows > 0 {
				width = t.bytes / t.rows
			}
			if t.columns >= wideColumns || width >= wideRowBytes {
				add(SeverityWarning, "full_identity_wide", qualified, fmt.Sprintf("%s has REPLICA IDENTITY FULL with %d columns (about %d bytes a row): every UPDATE and DELETE writes the whole old row to the WAL", qualified, t.columns, width),
					fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (...); then ALTER TABLE %s REPLICA IDENTITY DEFAULT;", q, q))
			}
		}
		if t.generated != "" && version < 180000 {
			add(SeverityWarning, "generated_columns", qualified, fmt.Sprintf("generated columns %s are not published before Postgres 18: the replica will not have them", t.generated),
				"Compute them in the destination (a view), or upgrade the source to Postgres 18.")
		}
		if tc, ok := r.dest.(replica.TypeChecker); ok && t.canSelect {
			st, err := describeTable(ctx, conn, schema, table)
			if err == nil {
				var asText []string
				for _, c := range st.Columns {
					if tc.StoredAsText(c) {
						asText = append(asText, fmt.Sprintf("%s (%s)", c.Name, c.TypeName))
					}
				}
				if len(asText) > 0 {
					add(SeverityInfo, "types_as_text", qualified, "stored as text in the destination: "+strings.Join(asText, ", "),
						`Nothing, if text suits the readers; otherwise give a type hint with columns => '{"table": {"column": {"data_type": "..."}}}'.`)
				}
			}
		}
		totalBytes += t.bytes
		if t.rows < 0 {
			// Never vacuumed or analyzed: the planner has no count yet.
			unknownRows = true
			add(SeverityInfo, "snapshot_size", qualified, fmt.Sprintf("%s on disk; no row estimate yet", prettyBytes(t.bytes)), fmt.Sprintf("ANALYZE %s; for a row estimate.", q))
		} else {
			totalRows += t.rows
			add(SeverityInfo, "snapshot_size", qualified, fmt.Sprintf("about %d rows, %s on disk", t.rows, prettyBytes(t.bytes)), "")
		}
	}
	if len(names) > 1 {
		rows := fmt.Sprintf("about %d rows", totalRows)
		if unknownRows {
			rows = fmt.Sprintf("at least %d rows (some tables have no estimate)", totalRows)
		}
		add(SeverityInfo, "snapshot_size", "", fmt.Sprintf("%d tables, %s, %s on disk", len(names), rows, prettyBytes(totalBytes)), "")
	}
	rank := map[string]int{SeverityError: 0, SeverityWarning: 1, SeverityInfo: 2}
	slices.SortStableFunc(out, func(a, b Finding) int { return rank[a.Severity] - rank[b.Severity] })
	return out, nil
}

// tableFacts is what the preflight reads about one table.
type tableFacts struct {
	kind, identity       byte
	owner, canSelect     bool
	hasPK, hasIdentIndex bool
	columns              int
	generated, ownerName string
	rows, bytes          int64
}

func quoteIdent(s string) string { return ident(s) }

func prettyBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %s", v, []string{"bytes", "kB", "MB", "GB", "TB"}[u])
}
