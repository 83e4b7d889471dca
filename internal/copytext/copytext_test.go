package copytext_test

import (
	"testing"

	"github.com/pgcdc/pgcdc/internal/copytext"
)

func TestAppendUnescaped(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:              "plain",
		`a\tb\nc\\d`:         "a\tb\nc\\d",
		`\b\f\r\v`:           "\b\f\r\v",
		`\101\0\7x`:          "A\x00\x07x",
		`\x41\x4a\xg\x7`:     "AJxg\x07",
		`\N`:                 "N",
		`tail\`:              `tail\`,
		`\1234`:              "S4",
		`\q`:                 "q",
		"utf8 \\303\\251 ok": "utf8 é ok",
	} {
		if got := string(copytext.AppendUnescaped([]byte(">"), []byte(in))); got != ">"+want {
			t.Errorf("%q: got %q, want %q", in, got, ">"+want)
		}
	}
}
