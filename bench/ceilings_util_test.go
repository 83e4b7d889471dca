package bench_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// tableHash reads every row of query (which must order by the key) and
// hashes a canonical rendering of each value, so that a DuckDB replica read
// through pgcdc and a Postgres table hash the same when they hold the same
// rows, whatever each server's text format for a type.
func tableHash(ctx context.Context, conn *pgx.Conn, query string) (rows int64, sum string, err error) {
	r, err := conn.Query(ctx, query)
	if err != nil {
		return 0, "", err
	}
	defer r.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(h, 1<<16)
	for r.Next() {
		vals, err := r.Values()
		if err != nil {
			return 0, "", err
		}
		for i, v := range vals {
			if i > 0 {
				w.WriteByte(0x1f)
			}
			w.WriteString(canon(v))
		}
		w.WriteByte(0x1e)
		rows++
	}
	if err := r.Err(); err != nil {
		return 0, "", err
	}
	w.Flush()
	return rows, hex.EncodeToString(h.Sum(nil)), nil
}

// canon renders one value the same way whichever server sent it.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return `\N`
	case string:
		// An array or a JSON document that a server sends as text (pgcdc
		// sends DuckDB's lists and JSON that way) renders as the decoded
		// value the other server sends. The same applies to both sides, so
		// a text column holding JSON compares as JSON.
		if len(x) > 1 && (x[0] == '[' || x[0] == '{') {
			var v any
			if json.Unmarshal([]byte(x), &v) == nil {
				return canon(v)
			}
		}
		return strconv.Quote(x)
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case pgtype.Numeric:
		if !x.Valid {
			return `\N`
		}
		if x.NaN {
			return "NaN"
		}
		if x.InfinityModifier != pgtype.Finite {
			return fmt.Sprint(x.InfinityModifier)
		}
		r := new(big.Rat).SetInt(x.Int)
		if x.Exp > 0 {
			r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil)))
		} else if x.Exp < 0 {
			r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-x.Exp)), nil)))
		}
		return r.RatString()
	case [16]byte:
		return hex.EncodeToString(x[:])
	case netip.Prefix:
		return x.String()
	case map[string]any, []any:
		b, err := json.Marshal(canonJSON(x))
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	default:
		return fmt.Sprintf("%v", x)
	}
}

// canonJSON renders the scalars inside arrays and JSON documents with canon,
// so that an array's elements compare as the values of a column do.
func canonJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = canonJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = canonJSON(e)
		}
		return s
	default:
		return canon(x)
	}
}

// columnList is the quoted column list of a source table, in order, so the
// replica is read without any column pgcdc adds.
func columnList(ctx context.Context, conn *pgx.Conn, table string) (string, error) {
	var cols []string
	err := conn.QueryRow(ctx, `SELECT array_agg('"' || replace(attname, '"', '""') || '"' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table).Scan(&cols)
	return strings.Join(cols, ", "), err
}

// hashQuery is the ordered read of table used on both sides.
func hashQuery(ctx context.Context, src *pgx.Conn, table, key string) (string, error) {
	cols, err := columnList(ctx, src, table)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", cols, pgx.Identifier{table}.Sanitize(), key), nil
}

// tableCheck is a table's expected content: its rows and hash at the source.
type tableCheck struct {
	src          *pgx.Conn
	table, query string
	rows         int64
	sum          string
}

func sourceChecks(ctx context.Context, t testing.TB, src *pgx.Conn, tables map[string]string) []tableCheck {
	t.Helper()
	var out []tableCheck
	for _, table := range sortedKeys(tables) {
		q, err := hashQuery(ctx, src, table, tables[table])
		if err != nil {
			t.Fatal(err)
		}
		n, sum, err := tableHash(ctx, src, q)
		if err != nil {
			t.Fatalf("source %s: %v", table, err)
		}
		out = append(out, tableCheck{src, table, q, n, sum})
	}
	return out
}

// verify fails the test unless the replica read through conn holds the
// source's rows.
func verify(ctx context.Context, t testing.TB, what string, conn *pgx.Conn, checks []tableCheck) {
	t.Helper()
	for _, c := range checks {
		n, sum, err := tableHash(ctx, conn, c.query)
		if err != nil {
			t.Fatalf("%s: reading %s: %v", what, c.table, err)
		}
		if n != c.rows || sum != c.sum {
			t.Fatalf("%s: %s differs from the source: %d rows, hash %s; the source has %d rows, hash %s; %s", what, c.table, n, sum[:12], c.rows, c.sum[:12],
				firstDiff(ctx, c.src, conn, c.query))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	for i := range k {
		for j := i + 1; j < len(k); j++ {
			if k[j] < k[i] {
				k[i], k[j] = k[j], k[i]
			}
		}
	}
	return k
}

// procCPU is a process's user and system CPU time so far, from
// /proc/PID/stat.
func procCPU(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	// The command name is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name: state is f[0]; utime is field 14 of the
	// whole line, so f[11], and stime f[12]. Clock ticks are 100 a second
	// on Linux.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond, nil
}

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// slotCPU follows the CPU time of the walsender serving slot while it
// runs: it polls the slot's active_pid and the process's /proc/PID/stat,
// and stop returns the last reading (the walsender exits with its client,
// so a final reading is not possible; the polling interval bounds the error).
func slotCPU(ctx context.Context, dsn, slot string) (stop func() (user, sys time.Duration)) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var u, s time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		pid := 0
		for ctx.Err() == nil {
			if pid == 0 {
				var p *int32
				if err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&p); err == nil && p != nil {
					pid = int(*p)
				}
			}
			if pid != 0 {
				if uu, ss, err := procCPU(pid); err == nil {
					mu.Lock()
					u, s = uu, ss
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() (time.Duration, time.Duration) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return u, s
	}
}

// clientEnv is the environment for Postgres client programs run against a
// test cluster.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGPASSWORD="+pgtest.Password, "PGSSLMODE=disable")
}

// runClient runs a client program (pgbench, pg_recvlogical) to completion.
func runClient(ctx context.Context, path string, args ...string) (string, error) {
	cmd := osexec.CommandContext(ctx, path, args...)
	cmd.Env = clientEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func medianDur(d []time.Duration) time.Duration {
	f := make([]float64, len(d))
	for i, v := range d {
		f[i] = float64(v)
	}
	return time.Duration(median(f))
}

func secs(d []time.Duration) string {
	var s []string
	for _, v := range d {
		s = append(s, fmt.Sprintf("%.2f", v.Seconds()))
	}
	return strings.Join(s, ", ")
}

// firstDiff describes the first row where two reads of query differ.
func firstDiff(ctx context.Context, a, b *pgx.Conn, query string) string {
	ra, err := a.Query(ctx, query)
	if err != nil {
		return err.Error()
	}
	defer ra.Close()
	rb, err := b.Query(ctx, query)
	if err != nil {
		return err.Error()
	}
	defer rb.Close()
	render := func(r pgx.Rows) string {
		vals, err := r.Values()
		if err != nil {
			return err.Error()
		}
		var s []string
		for _, v := range vals {
			s = append(s, fmt.Sprintf("%s (%T)", canon(v), v))
		}
		return strings.Join(s, " | ")
	}
	for i := 0; ; i++ {
		na, nb := ra.Next(), rb.Next()
		if !na || !nb {
			return fmt.Sprintf("one side ends at row %d (source: %v, replica: %v)", i, na, nb)
		}
		x, y := render(ra), render(rb)
		if x != y {
			return fmt.Sprintf("first difference at row %d: source %s; replica %s", i, x, y)
		}
	}
}
