// Package copytext is Postgres's COPY text format at the level of one
// field: the backslash escapes that COPY ... TO writes and COPY ... FROM
// reads. Both the wire front end (COPY FROM STDIN from clients) and the
// snapshot (COPY TO STDOUT from the source) decode it, and must agree.
package copytext

// AppendUnescaped appends field f to dst with its escapes undone: \b \f \n
// \r \t \v, \digits (octal, up to three), \xhex (up to two) and a
// backslash before any other character, which stands for that character.
// A trailing lone backslash is kept as it is; Postgres never writes one.
func AppendUnescaped(dst, f []byte) []byte {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c = f[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			dst = append(dst, byte(v))
		case 'x':
			v, digits := 0, 0
			for digits < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexValue(f[i])
				digits++
			}
			if digits == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexValue(c byte) int {
	switch {
	case c <= '9':
		return int(c - '0')
	case c >= 'a':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
