package sql

// MentionsFunction exposes the pre-filter to the black-box tests, which
// check it against a naive search.
func (c *Catalog) MentionsFunction(query string) bool { return c.mentionsFunction(query) }

// CreateSQL exposes a function's declaration for the destination.
func (f *Function) CreateSQL() string { return f.createSQL() }
