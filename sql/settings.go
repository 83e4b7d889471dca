package sql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names whatever the host has installed

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// SettingsSession is a Session that follows Postgres session settings. The
// router keeps the settings (SET, SHOW, RESET, startup parameters) and
// tells the session the ones it acts on: TimeZone, statement_timeout,
// search_path, default_transaction_read_only, transaction_read_only and
// the isolation levels.
type SettingsSession interface {
	// ApplySetting takes the new value of a setting, by lower-case name,
	// as SHOW prints it; "" is the default. An error refuses the value.
	ApplySetting(ctx context.Context, name, value string) error
	// TransactionSetting is what SHOW says for transaction_read_only and
	// transaction_isolation, which depend on the transaction.
	TransactionSetting(name string) string
}

// LoadTimeZone reads a Postgres TimeZone value: a zone name (UTC,
// Europe/Paris), or a fixed offset as Postgres takes it in SET TIME ZONE: a
// number of hours east of Greenwich ('-7', 5.5, '+05:30'). POSIX
// specifications ('UTC+7', 'EST5EDT' aside) are not read.
func LoadTimeZone(v string) (*time.Location, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "utc", "gmt", "z", "zulu", "etc/utc", "universal":
		return time.UTC, nil
	case "local", "default", "":
		return nil, fmt.Errorf("invalid value for parameter \"TimeZone\": %q", v)
	}
	if v[0] == '+' || v[0] == '-' || v[0] >= '0' && v[0] <= '9' {
		sign := 1
		s := v
		switch s[0] {
		case '-':
			sign, s = -1, s[1:]
		case '+':
			s = s[1:]
		}
		var secs int
		if h, m, ok := strings.Cut(s, ":"); ok {
			hh, err1 := strconv.Atoi(h)
			mm, err2 := strconv.Atoi(m)
			if err1 != nil || err2 != nil || mm >= 60 {
				return nil, fmt.Errorf("invalid value for parameter \"TimeZone\": %q", v)
			}
			secs = hh*3600 + mm*60
		} else {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for parameter \"TimeZone\": %q", v)
			}
			secs = int(f * 3600)
		}
		if secs > 15*3600 {
			return nil, fmt.Errorf("invalid value for parameter \"TimeZone\": %q", v)
		}
		return time.FixedZone(v, sign*secs), nil
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, fmt.Errorf("invalid value for parameter \"TimeZone\": %q", v)
	}
	return loc, nil
}

// ParseMilliseconds reads a Postgres time setting whose unit is the
// millisecond (statement_timeout): a number of milliseconds, or a number
// with a unit (us, ms, s, min, h, d).
func ParseMilliseconds(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '-' || s[i] == '+') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid value %q: a number of milliseconds, or one with a unit (ms, s, min, h, d), at least 0", v)
	}
	unit := time.Millisecond
	switch strings.TrimSpace(s[i:]) {
	case "", "ms":
	case "us":
		unit = time.Microsecond
	case "s":
		unit = time.Second
	case "min":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, fmt.Errorf("invalid value %q: valid units are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\"", v)
	}
	return time.Duration(n * float64(unit)).Round(time.Millisecond), nil
}

// FormatMilliseconds prints a duration as SHOW prints a millisecond
// setting: in the largest unit that divides it, "0" for none.
func FormatMilliseconds(d time.Duration) string {
	ms := d.Milliseconds()
	if ms == 0 {
		return "0"
	}
	for _, u := range []struct {
		ms   int64
		name string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}} {
		if ms%u.ms == 0 {
			return strconv.FormatInt(ms/u.ms, 10) + u.name
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// TransactionModes are the modes of BEGIN, START TRANSACTION, SET
// TRANSACTION and SET SESSION CHARACTERISTICS AS TRANSACTION.
type TransactionModes struct {
	Isolation string // "serializable", "repeatable read", ...; "" when not given
	ReadOnly  *bool  // nil when not given
}

// ModesOf reads transaction modes from the options of a parsed statement.
func ModesOf(options []*pg_query.Node) TransactionModes {
	var m TransactionModes
	for _, o := range options {
		d := o.GetDefElem()
		switch d.GetDefname() {
		case "transaction_isolation":
			m.Isolation = d.GetArg().GetAConst().GetSval().GetSval()
		case "transaction_read_only":
			ro := d.GetArg().GetAConst().GetIval().GetIval() == 1
			m.ReadOnly = &ro
		}
	}
	return m
}

// BeginModes reads the modes of a BEGIN or START TRANSACTION statement.
func BeginModes(query string) TransactionModes {
	res, err := pg_query.Parse(query)
	if err != nil || len(res.GetStmts()) != 1 {
		return TransactionModes{}
	}
	return ModesOf(res.GetStmts()[0].GetStmt().GetTransactionStmt().GetOptions())
}
