package duckdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// pgTimestamp prints t as Postgres does with DateStyle ISO: BC years as
// their absolute value with " BC" last, trailing zeros of the fraction
// dropped, and with tz the offset as +HH[:MM[:SS]].
func pgTimestamp(t time.Time, tz bool) string {
	y, bc := t.Year(), false
	if y <= 0 {
		y, bc = 1-y, true
	}
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
	if us := t.Nanosecond() / 1000; us != 0 {
		f := fmt.Sprintf(".%06d", us)
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += f
	}
	if tz {
		_, off := t.Zone()
		sign := '+'
		if off < 0 {
			sign, off = '-', -off
		}
		s += fmt.Sprintf("%c%02d", sign, off/3600)
		if off%3600 != 0 {
			s += fmt.Sprintf(":%02d", off%3600/60)
			if off%60 != 0 {
				s += fmt.Sprintf(":%02d", off%60)
			}
		}
	}
	if bc {
		s += " BC"
	}
	return s
}

// parseTimestamp and parseDate agree with Go's calendar over Postgres's
// whole range, BC included, in every offset form.
func TestParseTimestampMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(-4712, 11, 24, 0, 0, 0, 0, time.UTC).UnixMicro() // 4713 BC, Postgres's first day
	hi := time.Date(285000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()  // hi-lo fits an int64; the end is in TestLoadChunksTypedMatchesLoad
	now, century := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), int64(100*365*86400e6)
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -(3*3600 + 30*60 + 45)), time.FixedZone("", -16*3600)}
	for i := range 200000 {
		us := lo + r.Int64N(hi-lo)
		if i%2 == 0 {
			us = now + r.Int64N(century) // the dates most tables hold
		}
		if i%4 == 0 {
			us -= us % 1_000_000 // whole seconds: no fraction printed
		}
		want := time.UnixMicro(us).UTC()
		for _, tz := range []bool{false, true} {
			shown := want
			if tz {
				shown = want.In(zones[i%len(zones)])
			}
			text := pgTimestamp(shown, tz)
			got, err := parseTimestamp([]byte(text), tz)
			wantUS := us
			if !tz {
				wantUS = time.Date(shown.Year(), shown.Month(), shown.Day(), shown.Hour(), shown.Minute(), shown.Second(), shown.Nanosecond(), time.UTC).UnixMicro()
			}
			if err != nil || got != wantUS {
				t.Fatalf("parseTimestamp(%q, %v) = %d, %v; want %d", text, tz, got, err, wantUS)
			}
		}
		day := time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, time.UTC)
		text := pgTimestamp(day, false)
		text = strings.Replace(text, " 00:00:00", "", 1)
		got, err := parseDate([]byte(text))
		if err != nil || int64(got) != day.Unix()/86400 {
			t.Fatalf("parseDate(%q) = %d, %v; want %d", text, got, err, day.Unix()/86400)
		}
	}
}

func BenchmarkLoadParse(b *testing.B) {
	ts := []byte("2026-01-01 00:01:00.123456+00")
	d := []byte("2020-01-01")
	u := []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseTimestamp(ts, true); err != nil {
			b.Fatal(err)
		}
		if _, err := parseDate(d); err != nil {
			b.Fatal(err)
		}
		if _, err := parseUUID(u); err != nil {
			b.Fatal(err)
		}
	}
}

// appendJSONString writes what encoding/json writes, up to escapes that
// decode the same: every string, invalid UTF-8 included, decodes to the
// same text.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "<", ">", "&", "ü", "\u2028", "\u2029", "😀", "\xff", "\xc3", "\xe2\x80", " ", "{", "}", ","}
	for range 20000 {
		var s strings.Builder
		for range r.IntN(12) {
			s.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		var mine bytes.Buffer
		appendJSONString(&mine, []byte(s.String()))
		want, err := json.Marshal(s.String())
		if err != nil {
			t.Fatal(err)
		}
		var got, exp string
		if err := json.Unmarshal(mine.Bytes(), &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s, not JSON: %v", s.String(), mine.Bytes(), err)
		}
		if err := json.Unmarshal(want, &exp); err != nil {
			t.Fatal(err)
		}
		if got != exp {
			t.Fatalf("appendJSONString(%q) = %s decodes to %q; encoding/json's %s to %q", s.String(), mine.Bytes(), got, want, exp)
		}
	}
}
