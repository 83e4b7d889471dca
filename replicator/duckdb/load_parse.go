package duckdb

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// loadKind is how the load function hands one column's values to DuckDB.
// Postgres's text is parsed in Go where that is exact and cheap, so that
// DuckDB neither receives a string per value (one cgo call each) nor casts
// it; every other column goes over as text and is cast in SQL, as the
// staged path does.
type loadKind uint8

const (
	loadText        loadKind = iota // VARCHAR, cast in SQL (castExpr)
	loadInt2                        // SMALLINT
	loadInt4                        // INTEGER
	loadInt8                        // BIGINT
	loadBool                        // BOOLEAN
	loadFloat4                      // FLOAT
	loadFloat8                      // DOUBLE
	loadDecimal                     // DECIMAL(p,s): the unscaled integer
	loadTimestamp                   // BIGINT microseconds, made a TIMESTAMP in SQL
	loadTimestamptz                 // BIGINT microseconds since 1970 UTC, made a TIMESTAMPTZ in SQL
	loadDate                        // INTEGER days since 1970-01-01, made a DATE in SQL
	loadUUID                        // UUID
	loadBytea                       // BLOB, unhexed in Go
)

// Infinity as the load function hands it over for timestamps (microseconds)
// and dates (days): the values DuckDB itself stores for infinity, which no
// finite value reaches, mapped back to infinity in SQL (see loadExpr).
const (
	infMicros = math.MaxInt64
	infDays   = math.MaxInt32
)

// loadColumn is one column of a load: its kind and, for DECIMAL, the
// width and scale.
type loadColumn struct {
	kind         loadKind
	width, scale uint8
}

// loadColumnFor picks the kind for column c. Hinted columns and arrays keep
// the text path: their conversions are the staged path's.
func loadColumnFor(c replica.Column) loadColumn {
	if c.Hint != nil || c.ElemOID != 0 {
		return loadColumn{kind: loadText}
	}
	switch c.TypeOID {
	case oidInt2:
		return loadColumn{kind: loadInt2}
	case oidInt4:
		return loadColumn{kind: loadInt4}
	case oidInt8:
		return loadColumn{kind: loadInt8}
	case oidBool:
		return loadColumn{kind: loadBool}
	case oidFloat4:
		return loadColumn{kind: loadFloat4}
	case oidFloat8:
		return loadColumn{kind: loadFloat8}
	case oidNumeric:
		if p, s, ok := numericTypmod(c.TypeMod); ok && p <= maxDecimal && p >= 1 {
			return loadColumn{kind: loadDecimal, width: uint8(p), scale: uint8(s)}
		}
	case oidTimestamp:
		return loadColumn{kind: loadTimestamp}
	case oidTimestamptz:
		return loadColumn{kind: loadTimestamptz}
	case oidDate:
		return loadColumn{kind: loadDate}
	case oidUUID:
		return loadColumn{kind: loadUUID}
	case oidBytea:
		return loadColumn{kind: loadBytea}
	}
	return loadColumn{kind: loadText}
}

// typeInfo is the DuckDB type of the load function's column.
func (lc loadColumn) typeInfo() (duckdb.TypeInfo, error) {
	switch lc.kind {
	case loadDecimal:
		return duckdb.NewDecimalInfo(lc.width, lc.scale)
	case loadInt2:
		return duckdb.NewTypeInfo(duckdb.TYPE_SMALLINT)
	case loadInt4, loadDate:
		return duckdb.NewTypeInfo(duckdb.TYPE_INTEGER)
	case loadInt8, loadTimestamp, loadTimestamptz:
		return duckdb.NewTypeInfo(duckdb.TYPE_BIGINT)
	case loadBool:
		return duckdb.NewTypeInfo(duckdb.TYPE_BOOLEAN)
	case loadFloat4:
		return duckdb.NewTypeInfo(duckdb.TYPE_FLOAT)
	case loadFloat8:
		return duckdb.NewTypeInfo(duckdb.TYPE_DOUBLE)
	case loadUUID:
		return duckdb.NewTypeInfo(duckdb.TYPE_UUID)
	case loadBytea:
		return duckdb.NewTypeInfo(duckdb.TYPE_BLOB)
	}
	return duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
}

// loadExpr is the SQL that stores the load function's column src into c.
// make_timestamp and make_timestamptz take microseconds as they are (no
// time zone is applied); infinity has no microsecond count they accept, so
// it is mapped on its own.
func loadExpr(c replica.Column, lc loadColumn, src string) string {
	switch lc.kind {
	case loadText:
		return castExpr(c, src)
	case loadTimestamp:
		return fmt.Sprintf("CASE WHEN %[1]s = %[2]d THEN CAST('infinity' AS TIMESTAMP) WHEN %[1]s = -%[2]d THEN CAST('-infinity' AS TIMESTAMP) ELSE make_timestamp(%[1]s) END", src, int64(infMicros))
	case loadTimestamptz:
		return fmt.Sprintf("CASE WHEN %[1]s = %[2]d THEN CAST('infinity' AS TIMESTAMPTZ) WHEN %[1]s = -%[2]d THEN CAST('-infinity' AS TIMESTAMPTZ) ELSE make_timestamptz(%[1]s) END", src, int64(infMicros))
	case loadDate:
		return fmt.Sprintf("CASE WHEN %[1]s = %[2]d THEN CAST('infinity' AS DATE) WHEN %[1]s = -%[2]d THEN CAST('-infinity' AS DATE) ELSE CAST(DATE '1970-01-01' + %[1]s AS DATE) END", src, infDays)
	}
	return src // already of the column's type
}

var errEmpty = errors.New("empty value")

// setLoaded reads v, Postgres's text output of a value of column kind lc,
// and writes it into row i of column j. scratch is the cursor's buffer for
// bytea, reused from value to value.
func setLoaded(out duckdb.DataChunk, j, i int, lc loadColumn, v []byte, scratch *[]byte) error {
	if len(v) == 0 {
		return errEmpty
	}
	switch lc.kind {
	case loadInt2, loadInt4, loadInt8, loadBool, loadFloat4, loadFloat8:
		return setParsed(out, j, i, lc.kind, v)
	case loadDecimal:
		return setDecimal(out, j, i, lc, v)
	case loadTimestamp, loadTimestamptz:
		us, err := parseTimestamp(v, lc.kind == loadTimestamptz)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(out, j, i, us)
	case loadDate:
		d, err := parseDate(v)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(out, j, i, d)
	case loadUUID:
		u, err := parseUUID(v)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(out, j, i, u)
	case loadBytea:
		b, err := unhexBytea(v, (*scratch)[:0])
		if err != nil {
			return err
		}
		*scratch = b
		return duckdb.SetChunkValue(out, j, i, b)
	}
	return fmt.Errorf("no parser for load kind %d", lc.kind)
}

// setDecimal stores a numeric(p,s)'s text as DECIMAL(p,s)'s unscaled
// integer: "-12.30" in DECIMAL(5,2) is -1230. Postgres prints exactly s
// decimals; anything it would not print (NaN, more digits than p, more
// decimals than s, an exponent) is refused rather than rounded.
func setDecimal(out duckdb.DataChunk, j, i int, lc loadColumn, v []byte) error {
	s := v
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	var mag uint64
	digits, frac, dot := 0, 0, false
	wide := false // more than 18 significant digits: big.Int
	seen := false
	for _, ch := range s {
		switch {
		case ch >= '0' && ch <= '9':
			seen = true
			if dot {
				frac++
			}
			if mag == 0 && ch == '0' && !dot {
				continue // leading zeros are no digits of the precision
			}
			digits++
			if digits > 18 {
				wide = true
			} else {
				mag = mag*10 + uint64(ch-'0')
			}
		case ch == '.' && !dot:
			dot = true
		default:
			return fmt.Errorf("invalid numeric %q for DECIMAL(%d,%d)", v, lc.width, lc.scale)
		}
	}
	if !seen || frac > int(lc.scale) {
		return fmt.Errorf("invalid numeric %q for DECIMAL(%d,%d)", v, lc.width, lc.scale)
	}
	// Scale up to s decimals; count the digits the unscaled value has.
	pad := int(lc.scale) - frac
	if digits > 0 && digits+pad > int(lc.width) {
		return fmt.Errorf("numeric %q does not fit DECIMAL(%d,%d)", v, lc.width, lc.scale)
	}
	if !wide && digits+pad <= 18 {
		for range pad {
			mag *= 10
		}
		n := int64(mag)
		if neg {
			n = -n
		}
		return duckdb.SetChunkValue(out, j, i, n)
	}
	// 19 to 38 digits: DuckDB's HUGEINT decimal, through big.Int.
	buf := make([]byte, 0, len(s)+pad+1)
	if neg {
		buf = append(buf, '-')
	}
	for _, ch := range s {
		if ch != '.' {
			buf = append(buf, ch)
		}
	}
	for range pad {
		buf = append(buf, '0')
	}
	n, ok := new(big.Int).SetString(string(buf), 10)
	if !ok {
		return fmt.Errorf("invalid numeric %q for DECIMAL(%d,%d)", v, lc.width, lc.scale)
	}
	return duckdb.SetChunkValue(out, j, i, n)
}

// digitsAt reads n decimal digits at s[at:].
func digitsAt(s []byte, at, n int) (int64, bool) {
	if at+n > len(s) {
		return 0, false
	}
	var x int64
	for _, ch := range s[at : at+n] {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		x = x*10 + int64(ch-'0')
	}
	return x, true
}

// parseYMD reads "Y-MM-DD" (Y four digits or more) at the start of s and
// returns the days since 1970-01-01 (proleptic Gregorian, astronomical year
// when bc) and where the date ends. The caller says whether " BC" follows.
func parseYMD(s []byte, bc bool) (int64, int, bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n < 4 || n > 7 || n+6 > len(s) || s[n] != '-' || s[n+3] != '-' {
		return 0, 0, false
	}
	y, _ := digitsAt(s, 0, n)
	m, ok1 := digitsAt(s, n+1, 2)
	d, ok2 := digitsAt(s, n+4, 2)
	if !ok1 || !ok2 || m < 1 || m > 12 || d < 1 {
		return 0, 0, false
	}
	if y == 0 {
		return 0, 0, false // Postgres has no year 0: 1 BC precedes 1 AD
	}
	if bc {
		y = 1 - y // 1 BC is year 0
	}
	if d > daysIn(y, m) {
		return 0, 0, false
	}
	return daysFromCivil(y, m, d), n + 6, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// cutBC reports whether s ends in " BC", and s without it.
func cutBC(s []byte) ([]byte, bool) {
	if n := len(s); n > 3 && string(s[n-3:]) == " BC" {
		return s[:n-3], true
	}
	return s, false
}

// parseDate reads a date as Postgres prints it with DateStyle ISO:
// "2026-01-02", "0044-03-15 BC", "infinity", "-infinity".
func parseDate(v []byte) (int32, error) {
	switch string(v) {
	case "infinity":
		return infDays, nil
	case "-infinity":
		return -infDays, nil
	}
	s, bc := cutBC(v)
	days, end, ok := parseYMD(s, bc)
	if !ok || end != len(s) || days <= -infDays || days >= infDays {
		return 0, fmt.Errorf("invalid date %q", v)
	}
	return int32(days), nil
}

// parseTimestamp reads a timestamp as Postgres prints it with DateStyle ISO
// ("2026-01-01 10:00:00.5", with tz an offset such as "+00", "+05:30" or
// "-03:30:45" after it, and " BC" last) into microseconds since
// 1970-01-01 00:00:00 UTC; infinity is ±infMicros.
func parseTimestamp(v []byte, tz bool) (int64, error) {
	switch string(v) {
	case "infinity":
		return infMicros, nil
	case "-infinity":
		return -infMicros, nil
	}
	bad := func() (int64, error) { return 0, fmt.Errorf("invalid timestamp %q", v) }
	s, bc := cutBC(v)
	days, p, ok := parseYMD(s, bc)
	if !ok || p+9 > len(s) || s[p] != ' ' || s[p+3] != ':' || s[p+6] != ':' {
		return bad()
	}
	h, ok1 := digitsAt(s, p+1, 2)
	mi, ok2 := digitsAt(s, p+4, 2)
	sec, ok3 := digitsAt(s, p+7, 2)
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 59 {
		return bad()
	}
	p += 9
	var frac int64
	if p < len(s) && s[p] == '.' {
		p++
		n := 0
		for p+n < len(s) && s[p+n] >= '0' && s[p+n] <= '9' {
			n++
		}
		if n == 0 || n > 6 {
			return bad()
		}
		frac, _ = digitsAt(s, p, n)
		for range 6 - n {
			frac *= 10
		}
		p += n
	}
	var off int64 // seconds east of UTC
	if tz {
		if p+3 > len(s) || (s[p] != '+' && s[p] != '-') {
			return bad()
		}
		sign := int64(1)
		if s[p] == '-' {
			sign = -1
		}
		oh, ok := digitsAt(s, p+1, 2)
		if !ok {
			return bad()
		}
		off = oh * 3600
		p += 3
		for _, mul := range []int64{60, 1} {
			if p < len(s) && s[p] == ':' {
				x, ok := digitsAt(s, p+1, 2)
				if !ok || x > 59 {
					return bad()
				}
				off += x * mul
				p += 3
			}
		}
		off *= sign
	}
	if p != len(s) {
		return bad()
	}
	// days*86400e6 overflows int64 beyond about 292,000 years either
	// way; DuckDB's TIMESTAMP ends there too.
	const dayMicros = 86_400_000_000
	if days > math.MaxInt64/dayMicros-1 || days < math.MinInt64/dayMicros+1 {
		return 0, fmt.Errorf("timestamp %q out of range", v)
	}
	base := days * dayMicros
	rest := ((h*60+mi)*60+sec-off)*1_000_000 + frac // under two days either way
	if (rest > 0 && base > math.MaxInt64-rest) || (rest < 0 && base < math.MinInt64-rest) {
		return 0, fmt.Errorf("timestamp %q out of range", v)
	}
	us := base + rest
	if us >= infMicros || us <= -infMicros {
		return 0, fmt.Errorf("timestamp %q out of range", v)
	}
	return us, nil
}

// parseUUID reads Postgres's uuid output, 8-4-4-4-12 hex digits.
func parseUUID(v []byte) (duckdb.UUID, error) {
	var u duckdb.UUID
	if len(v) != 36 || v[8] != '-' || v[13] != '-' || v[18] != '-' || v[23] != '-' {
		return u, fmt.Errorf("invalid uuid %q", v)
	}
	k := 0
	for i := 0; i < 36; {
		if v[i] == '-' {
			i++
			continue
		}
		hi, lo := unhex(v[i]), unhex(v[i+1])
		if hi < 0 || lo < 0 {
			return u, fmt.Errorf("invalid uuid %q", v)
		}
		u[k] = byte(hi<<4 | lo)
		k++
		i += 2
	}
	return u, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unhexBytea decodes bytea's hex output ("\x0aff") onto dst.
func unhexBytea(v, dst []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '\\' || v[1] != 'x' || len(v)%2 != 0 {
		return nil, fmt.Errorf("invalid bytea %q: want hex output", v)
	}
	for i := 2; i < len(v); i += 2 {
		hi, lo := unhex(v[i]), unhex(v[i+1])
		if hi < 0 || lo < 0 {
			return nil, fmt.Errorf("invalid bytea %q", v)
		}
		dst = append(dst, byte(hi<<4|lo))
	}
	return dst, nil
}
