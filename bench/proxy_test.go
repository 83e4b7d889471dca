package bench_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// The proxy benchmark measures what pgcdc's proxy costs a client of a
// Postgres destination: pgbench's select-only transactions (-S, the worst
// case: the cheapest statement there is, so the relay's cost shows most;
// -pgbench.builtin tpcb-like runs pgbench's default read-write script), in
// the simple and the prepared protocol, straight against the destination and
// through pgcdc, in the same run, alternating. Each mode and client count
// reports the median transactions per second of both and their ratio, and
// the median of the ratios of each round's pair (which cancels drift in
// the machine's load).
//
//	go test ./bench -run TestProxyPgbench -v -timeout 30m -pgbench
//
// It starts its own destination cluster and pgcdc. -pgbench.cpuprofile
// writes pgcdc's CPU profile of the whole run (go tool pprof).
var (
	pgbenchOn      = flag.Bool("pgbench", false, "run the pgbench proxy benchmark (TestProxyPgbench)")
	pgbenchRounds  = flag.Int("pgbench.rounds", 5, "rounds; each runs every mode and client count once, directly and through pgcdc")
	pgbenchTime    = flag.Duration("pgbench.time", 10*time.Second, "pgbench -T of each run")
	pgbenchClients = flag.String("pgbench.clients", "1,4", "pgbench -c values, comma-separated")
	pgbenchScale   = flag.Int("pgbench.scale", 10, "pgbench -i -s")
	pgbenchProfile = flag.String("pgbench.cpuprofile", "", "write pgcdc's CPU profile here")
	pgbenchUnix    = flag.Bool("pgbench.unix", false, "pgcdc reaches the destination over its unix socket instead of TCP")
	pgbenchProcs   = flag.Int("pgbench.gomaxprocs", 0, "GOMAXPROCS for pgcdc (0: Go's default)")
	pgbenchBuiltin = flag.String("pgbench.builtin", "select-only", "pgbench -b script: select-only (-S), simple-update or tpcb-like")
)

func TestProxyPgbench(t *testing.T) {
	if !*pgbenchOn {
		t.Skip("a benchmark of several minutes: run with -pgbench")
	}
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Skip(err)
	}
	pgbench := filepath.Join(bin, "pgbench")
	if _, err := os.Stat(pgbench); err != nil {
		t.Skipf("no pgbench next to the server binaries (postgresql-contrib): %v", err)
	}
	var clients []int
	for _, s := range strings.Split(*pgbenchClients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("-pgbench.clients %q", *pgbenchClients)
		}
		clients = append(clients, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dest, err := pgtest.Start(ctx, pgtest.Options{Settings: map[string]string{"shared_buffers": "128MB"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Stop()
	run := func(port int, user string, args ...string) string {
		t.Helper()
		cmd := osexec.Command(pgbench, append(args, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", user, "postgres")...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PG") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "PGPASSWORD="+pgtest.Password, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(dest.Port, "postgres", "-i", "-q", "-s", strconv.Itoa(*pgbenchScale))

	destURL := dest.DSN("postgres")
	if *pgbenchUnix {
		destURL = fmt.Sprintf("postgres://postgres:%s@/postgres?host=%s&port=%d", pgtest.Password, filepath.Dir(dest.Dir), dest.Port)
	}
	opts := pgcdctest.Options{Source: dest.DSN("postgres"), Destination: destURL, Extra: []string{"--log-level", "warn"}}
	if *pgbenchProfile != "" {
		p, err := filepath.Abs(*pgbenchProfile)
		if err != nil {
			t.Fatal(err)
		}
		opts.Env = append(opts.Env, "PGCDC_CPU_PROFILE="+p)
	}
	if *pgbenchProcs > 0 {
		opts.Env = append(opts.Env, "GOMAXPROCS="+strconv.Itoa(*pgbenchProcs))
	}
	srv := pgcdctest.Start(t, opts)

	tps := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	measure := func(port int, user, mode string, c int) float64 {
		out := run(port, user, "-b", *pgbenchBuiltin, "-n", "-M", mode, "-c", strconv.Itoa(c), "-j", strconv.Itoa(c), "-T", strconv.Itoa(int(pgbenchTime.Seconds())))
		m := tps.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no tps in pgbench's output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	type key struct {
		mode    string
		clients int
	}
	direct, proxied := map[key][]float64{}, map[key][]float64{}
	// Warm both paths up.
	measure(dest.Port, "postgres", "simple", 1)
	measure(srv.Port, "bench", "simple", 1)
	for round := 0; round < *pgbenchRounds; round++ {
		for _, mode := range []string{"simple", "prepared"} {
			for _, c := range clients {
				k := key{mode, c}
				// Alternate which goes first, so neither always gets the
				// warmer cache or the quieter machine.
				if round%2 == 0 {
					direct[k] = append(direct[k], measure(dest.Port, "postgres", mode, c))
					proxied[k] = append(proxied[k], measure(srv.Port, "bench", mode, c))
				} else {
					proxied[k] = append(proxied[k], measure(srv.Port, "bench", mode, c))
					direct[k] = append(direct[k], measure(dest.Port, "postgres", mode, c))
				}
				t.Logf("round %d -M %s -c %d: direct %.0f tps, through pgcdc %.0f tps", round+1, mode, c, direct[k][round], proxied[k][round])
			}
		}
	}
	if *pgbenchProfile != "" {
		if err := srv.Signal(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Error(err)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "pgbench -b %s -T %d, %d rounds, scale %d, %d CPUs (%s/%s), destination over %s, GOMAXPROCS %d (0: default)\n\n",
		*pgbenchBuiltin, int(pgbenchTime.Seconds()), *pgbenchRounds, *pgbenchScale, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		map[bool]string{false: "TCP", true: "a unix socket"}[*pgbenchUnix], *pgbenchProcs)
	b.WriteString("| protocol | clients | direct tps (median) | through pgcdc tps (median) | ratio of medians | median of round ratios |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, mode := range []string{"simple", "prepared"} {
		for _, c := range clients {
			k := key{mode, c}
			var ratios []float64
			for i := range direct[k] {
				ratios = append(ratios, proxied[k][i]/direct[k][i])
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f | %.2f |\n", mode, c, median(direct[k]), median(proxied[k]),
				median(proxied[k])/median(direct[k]), median(ratios))
		}
	}
	b.WriteString("\nRaw tps, round by round (direct / through pgcdc):\n\n")
	for _, mode := range []string{"simple", "prepared"} {
		for _, c := range clients {
			k := key{mode, c}
			var pairs []string
			for i := range direct[k] {
				pairs = append(pairs, fmt.Sprintf("%.0f/%.0f", direct[k][i], proxied[k][i]))
			}
			fmt.Fprintf(&b, "- -M %s -c %d: %s\n", mode, c, strings.Join(pairs, ", "))
		}
	}
	t.Logf("\n%s", b.String())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
