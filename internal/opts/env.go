package opts

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LookupFunc looks a variable up in the caller's environment, as
// os.LookupEnv does.
type LookupFunc func(key string) (string, bool)

// ParseEnv parses docker's -e value: KEY=VALUE as is, or KEY alone, which
// takes KEY's value from lookup (the caller's environment). A KEY that
// lookup does not know is returned alone, which removes the variable from
// the container's environment (docker's behaviour).
func ParseEnv(s string, lookup LookupFunc) (string, error) {
	k, _, hasValue := strings.Cut(s, "=")
	if k == "" {
		return "", invalidf("invalid environment variable: %q", s)
	}
	if hasValue {
		return s, nil
	}
	if lookup != nil {
		if v, ok := lookup(k); ok {
			return k + "=" + v, nil
		}
	}
	return s, nil
}

const whiteSpaces = " \t"

// ParseEnvFile reads a file in docker's --env-file format (docker/cli
// pkg/kvfile): one variable a line; blank lines and lines starting with #
// are skipped; leading white space is dropped; the value is everything
// after the first "=" taken verbatim (no quotes, no escapes, no
// expansion, trailing spaces kept); a line with a name alone takes its
// value from lookup and is dropped when lookup does not know it (or is
// nil). A name may not be empty or contain spaces; the file must be UTF-8
// (a leading byte-order mark is ignored).
func ParseEnvFile(r io.Reader, lookup LookupFunc) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEnvFileLine)
	n := 1
	for ; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, invalidf("invalid utf8 bytes at line %d: %q", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return nil, invalidf("no variable name on line %d: %q", n, line)
		}
		if strings.ContainsAny(key, whiteSpaces) {
			return nil, invalidf("variable %q on line %d contains whitespaces", key, n)
		}
		if hasValue {
			out = append(out, line)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(line); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, invalidf("line %d of the env file is longer than %d bytes", n, maxEnvFileLine)
		}
		return nil, invalidf("reading env file: %v", err)
	}
	return out, nil
}

// maxEnvFileLine bounds a line of an env file (a variable): the kernel
// refuses larger environments anyway.
const maxEnvFileLine = 1 << 20

// ParseLabel parses docker's --label: key=value, or key alone for an
// empty value. The key may not be empty or contain spaces (leading white
// space is dropped); the value is taken as is.
func ParseLabel(s string) (key, value string, err error) {
	key, value, _ = strings.Cut(s, "=")
	key = strings.TrimLeft(key, whiteSpaces)
	if key == "" {
		return "", "", invalidf("invalid label %q: empty name", s)
	}
	if strings.ContainsAny(key, whiteSpaces) {
		return "", "", invalidf("label %q contains whitespaces", key)
	}
	return key, value, nil
}

// ParseLabelFile reads docker's --label-file: the --env-file format, where
// a line without "=" is ignored. Later lines win.
func ParseLabelFile(r io.Reader) (map[string]string, error) {
	lines, err := ParseEnvFile(r, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(lines))
	for _, l := range lines {
		k, v, err := ParseLabel(l)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}
