package replica

// MatchColumns says which existing destination column each of cols
// continues, by name: the result maps a wanted column to the existing one
// that holds its values (absent: a new column).
//
// existing maps each existing column to the source attnum recorded with it
// (0 when none, as for metadata columns). The attnum decides, because names
// move: after RENAME b TO c, RENAME a TO b the column named b holds a's
// values, and a column dropped and added again is new even under its old
// name. Columns without a recorded attnum continue the existing column of
// their name, and so do the metadata columns and columns whose own attnum is
// unknown (Num 0).
func MatchColumns(cols []Column, metadata []string, existing map[string]int) map[string]string {
	from := map[string]string{}
	taken := map[string]bool{}
	for _, c := range cols {
		if c.Num == 0 {
			continue
		}
		for name, num := range existing {
			if num == c.Num {
				from[c.Name], taken[name] = name, true
				break
			}
		}
	}
	// By name: metadata columns and columns without a recorded attnum, and
	// columns whose attnum the engine could not learn (the source dropped
	// or renamed them again after the change being applied: the catalog
	// it reads is the current one). Dropping and re-adding those would
	// lose their values.
	byName := func(name string, unknown bool) {
		if _, ok := from[name]; ok {
			return
		}
		if num, ok := existing[name]; ok && !taken[name] && (num == 0 || unknown) {
			from[name], taken[name] = name, true
		}
	}
	for _, c := range cols {
		byName(c.Name, c.Num == 0)
	}
	for _, m := range metadata {
		byName(m, false)
	}
	return from
}

// Rewritten lists the columns whose values in existing rows the source
// changed without writing WAL, so the stream never carries them: a type
// change (USING may have computed new values) and a column added with a
// volatile default to a table that has rows. from is MatchColumns's
// result, hasRows says the destination table already exists, and
// typeChanged compares a continued column's stored type with the one c
// needs.
func Rewritten(cols []Column, from map[string]string, hasRows bool, typeChanged func(c Column, old string) bool) []string {
	var stale []string
	for _, c := range cols {
		old, ok := from[c.Name]
		if (ok && typeChanged(c, old)) || (!ok && hasRows && c.HasDefault && c.Missing == nil) {
			stale = append(stale, c.Name)
		}
	}
	return stale
}
