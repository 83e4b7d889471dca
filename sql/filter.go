package sql

import "strings"

// The pre-filter keeps passthrough traffic from paying for a parse: a
// statement that does not contain any of our function names, in any ASCII
// case, cannot call one. It may let through statements that merely mention a
// name (in a string, a comment, a column name); the parse sorts those out.

// buildFilter prepares the needles. Besides the names themselves it finds the
// longest substring every name shares ("replicat" for the shipped catalog),
// so that the common case, a statement mentioning none of them, is one scan.
func (c *Catalog) buildFilter() {
	var names []string
	for _, fn := range c.Functions {
		names = append(names, strings.ToLower(fn.Name))
		c.needles = append(c.needles, newNeedle(names[len(names)-1]))
	}
	shortest := names[0]
	for _, n := range names {
		if len(n) < len(shortest) {
			shortest = n
		}
	}
	for l := len(shortest); l >= 4 && c.common == nil; l-- {
		for i := 0; i+l <= len(shortest); i++ {
			sub := shortest[i : i+l]
			all := true
			for _, n := range names {
				if !strings.Contains(n, sub) {
					all = false
					break
				}
			}
			if all {
				common := newNeedle(sub)
				c.common = &common
				break
			}
		}
	}
}

// Mentions reports whether query could call one of our functions: whether it
// contains one of their names in any ASCII case. It is the pre-filter
// Classify starts with, without allocating; false means the query is
// certainly not ours.
func (c *Catalog) Mentions(query string) bool { return c.mentionsFunction(query) }

// mentionsFunction reports whether query contains one of our function names,
// ignoring ASCII case, without allocating.
func (c *Catalog) mentionsFunction(query string) bool {
	if c.common != nil && !c.common.in(query) {
		return false
	}
	for _, n := range c.needles {
		if n.in(query) {
			return true
		}
	}
	return false
}

// letterRank orders letters from most to least frequent in English text,
// which SQL identifiers and keywords mostly are.
const letterRank = "etaoinshrdlcumwfgypbvkjxqz"

// needle is a lower-case ASCII string to look for in any ASCII case.
type needle struct {
	text   string
	anchor int // position of its rarest byte
	lo, up byte
}

// newNeedle picks the anchor: scanning for the rarest byte finds fewer false
// candidates than scanning for the first.
func newNeedle(text string) needle {
	n := needle{text: text}
	rank := -1
	for i := 0; i < len(text); i++ {
		r := strings.IndexByte(letterRank, text[i])
		if r < 0 {
			r = len(letterRank) // punctuation and digits are rarer still
		}
		if r > rank {
			n.anchor, rank = i, r
		}
	}
	n.lo, n.up = text[n.anchor], text[n.anchor]
	if 'a' <= n.lo && n.lo <= 'z' {
		n.up = n.lo - 'a' + 'A'
	}
	return n
}

// in reports whether s contains the needle in any ASCII case. It jumps
// between candidates for the anchor byte with strings.IndexByte, which is
// vectorised, instead of comparing byte by byte.
func (n *needle) in(s string) bool {
	k, size := n.anchor, len(n.text)
	// Candidates for the anchor byte lie in s[k : len(s)-size+k+1].
	for off := k; len(s)-off >= size-k; {
		rest := s[off : len(s)-(size-k)+1]
		i := strings.IndexByte(rest, n.lo)
		if n.up != n.lo {
			span := rest
			if i >= 0 {
				span = rest[:i]
			}
			if j := strings.IndexByte(span, n.up); j >= 0 {
				i = j
			}
		}
		if i < 0 {
			return false
		}
		start := off + i - k
		if equalFoldASCII(s[start:start+size], n.text) {
			return true
		}
		off += i + 1
	}
	return false
}
