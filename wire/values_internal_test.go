package wire

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestTextFormsArePostgres: intervals and timestamptz in text format read
// as Postgres prints them (IntervalStyle postgres; the offset of the
// value's zone, which is the session's TimeZone). pgtype writes "14 mon"
// and "Z".
func TestTextFormsArePostgres(t *testing.T) {
	m := pgtype.NewMap()
	kolkata := time.FixedZone("IST", 5*3600+1800)
	ts := time.Date(2024, 7, 1, 12, 0, 0, 123456000, time.UTC)
	for _, c := range []struct {
		oid  uint32
		v    any
		want string
	}{
		{pgtype.IntervalOID, pgtype.Interval{Months: 14, Days: 3, Microseconds: 14706500000, Valid: true}, "1 year 2 mons 3 days 04:05:06.5"},
		{pgtype.IntervalOID, pgtype.Interval{Months: 1, Days: -3, Microseconds: 3600e6, Valid: true}, "1 mon -3 days +01:00:00"},
		{pgtype.IntervalOID, pgtype.Interval{Days: -1, Valid: true}, "-1 days"},
		{pgtype.IntervalOID, pgtype.Interval{Microseconds: -90e6, Valid: true}, "-00:01:30"},
		{pgtype.IntervalOID, pgtype.Interval{Valid: true}, "00:00:00"},
		{pgtype.IntervalOID, pgtype.Interval{Months: -25, Valid: true}, "-2 years -1 mons"},
		{pgtype.TimestamptzOID, ts, "2024-07-01 12:00:00.123456+00"},
		{pgtype.TimestamptzOID, ts.In(kolkata), "2024-07-01 17:30:00.123456+05:30"},
		{pgtype.TimestamptzOID, ts.In(time.FixedZone("", -7*3600)), "2024-07-01 05:00:00.123456-07"},
	} {
		got, err := appendValue(m, []byte{}, c.oid, pgtype.TextFormatCode, c.v)
		if err != nil || string(got) != c.want {
			t.Errorf("%v: %q %v, want %q", c.v, got, err, c.want)
		}
	}
}
