package sql

// MentionsFunction exposes the pre-filter to the black-box tests, which
// check it against a naive search.
func (c *Catalog) MentionsFunction(query string) bool { return c.mentionsFunction(query) }
