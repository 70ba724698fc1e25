package opts

import (
	"strings"
	"unicode"
)

// The Dockerfile word processing that --change instructions go through
// (buildkit's shell lexer), with the features docker's instructions use:
// single quotes (literal), double quotes (with \" \$ \\ escapes and
// expansion), backslash escapes, $NAME, ${NAME}, and the modifiers
// ${NAME:-word} ${NAME-word} ${NAME:+word} ${NAME+word} ${NAME:?msg}
// ${NAME?msg}. The pattern modifiers (# % /) are rejected.

type lexer struct {
	src   []rune
	pos   int
	env   map[string]string
	words []string // finished words (for splitting)
	cur   strings.Builder
	inCur bool // cur holds a word, possibly empty ("" quoted)
}

func (l *lexer) peek() rune {
	if l.pos >= len(l.src) {
		return -1
	}
	return l.src[l.pos]
}

func (l *lexer) next() rune {
	r := l.peek()
	if r != -1 {
		l.pos++
	}
	return r
}

func (l *lexer) endWord() {
	if l.inCur {
		l.words = append(l.words, l.cur.String())
	}
	l.cur.Reset()
	l.inCur = false
}

func (l *lexer) addRaw(s string) {
	l.cur.WriteString(s)
	l.inCur = true
}

// addSplit adds the result of an unquoted expansion: its white space
// separates words, and an empty result adds nothing.
func (l *lexer) addSplit(s string) {
	fields := strings.FieldsFunc(s, unicode.IsSpace)
	if len(fields) == 0 {
		if s != "" {
			l.endWord()
		}
		return
	}
	r := []rune(s)
	if unicode.IsSpace(r[0]) {
		l.endWord()
	}
	for i, f := range fields {
		if i > 0 {
			l.endWord()
		}
		l.addRaw(f)
	}
	if unicode.IsSpace(r[len(r)-1]) {
		l.endWord()
	}
}

// process reads until stop (or the end when stop is -1). It returns the
// text as one word (spaces kept) and, through l.words, split words.
func (l *lexer) process(stop rune) (string, error) {
	var out strings.Builder
	for {
		r := l.peek()
		if r == -1 {
			if stop != -1 {
				return "", invalidf("unexpected end of statement while looking for matching %s", string(stop))
			}
			return out.String(), nil
		}
		if r == stop {
			l.next()
			return out.String(), nil
		}
		switch r {
		case '\'':
			s, err := l.singleQuote()
			if err != nil {
				return "", err
			}
			out.WriteString(s)
			l.addRaw(s)
		case '"':
			s, err := l.doubleQuote()
			if err != nil {
				return "", err
			}
			out.WriteString(s)
			l.addRaw(s)
		case '$':
			s, err := l.dollar()
			if err != nil {
				return "", err
			}
			out.WriteString(s)
			l.addSplit(s)
		case '\\':
			l.next()
			e := l.next()
			if e == -1 {
				return out.String(), nil
			}
			out.WriteRune(e)
			l.addRaw(string(e))
		default:
			l.next()
			out.WriteRune(r)
			if unicode.IsSpace(r) {
				l.endWord()
			} else {
				l.addRaw(string(r))
			}
		}
	}
}

func (l *lexer) singleQuote() (string, error) {
	l.next()
	var b strings.Builder
	for {
		r := l.next()
		switch r {
		case -1:
			return "", invalidf("unexpected end of statement while looking for matching single-quote")
		case '\'':
			return b.String(), nil
		}
		b.WriteRune(r)
	}
}

func (l *lexer) doubleQuote() (string, error) {
	l.next()
	var b strings.Builder
	for {
		switch l.peek() {
		case -1:
			return "", invalidf("unexpected end of statement while looking for matching double-quote")
		case '"':
			l.next()
			return b.String(), nil
		case '$':
			s, err := l.dollar()
			if err != nil {
				return "", err
			}
			b.WriteString(s)
		default:
			r := l.next()
			if r == '\\' {
				switch l.peek() {
				case -1:
					continue
				case '"', '$', '\\':
					r = l.next()
				}
			}
			b.WriteRune(r)
		}
	}
}

func (l *lexer) name() string {
	var b strings.Builder
	for {
		r := l.peek()
		if r == -1 {
			break
		}
		if b.Len() == 0 && unicode.IsDigit(r) {
			for unicode.IsDigit(l.peek()) {
				b.WriteRune(l.next())
			}
			return b.String()
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		b.WriteRune(l.next())
	}
	return b.String()
}

func (l *lexer) dollar() (string, error) {
	l.next()
	if l.peek() != '{' {
		n := l.name()
		if n == "" {
			return "$", nil
		}
		return l.env[n], nil
	}
	l.next()
	switch l.peek() {
	case -1:
		return "", invalidf("syntax error: missing '}'")
	case '{', '}', ':':
		return "", invalidf("syntax error: bad substitution")
	}
	n := l.name()
	if n == "" {
		return "", invalidf("syntax error: bad substitution")
	}
	op := l.next()
	value, set := l.env[n]
	switch op {
	case '}':
		return value, nil
	case -1:
		return "", invalidf("syntax error: missing '}'")
	}
	nullIsUnset := false
	mod := string(op)
	if op == ':' {
		nullIsUnset = true
		op = l.next()
		mod += string(op)
	}
	switch op {
	case '-', '+', '?':
	default:
		return "", invalidf("unsupported modifier (%s) in substitution", mod)
	}
	// the word is processed on its own; its words do not split ours
	sub := &lexer{src: l.src, pos: l.pos, env: l.env}
	word, err := sub.process('}')
	if err != nil {
		return "", err
	}
	l.pos = sub.pos
	unset := !set || (nullIsUnset && value == "")
	switch op {
	case '-':
		if unset {
			return word, nil
		}
		return value, nil
	case '+':
		if unset {
			return "", nil
		}
		return word, nil
	default: // '?'
		if unset {
			msg := "is not allowed to be unset"
			if set {
				msg = "is not allowed to be empty"
			}
			if word != "" {
				msg = word
			}
			return "", invalidf("%s: %s", n, msg)
		}
		return value, nil
	}
}

// envMap turns an environment list into a map (the first entry of a key
// wins, as getenv).
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return m
}

// expandWord processes a Dockerfile word: quotes removed, escapes and
// variables resolved, white space kept.
func expandWord(s string, env map[string]string) (string, error) {
	l := &lexer{src: []rune(s), env: env}
	return l.process(-1)
}

// expandWords processes s and splits it into words at unquoted white
// space, also inside expanded values.
func expandWords(s string, env map[string]string) ([]string, error) {
	l := &lexer{src: []rune(s), env: env}
	if _, err := l.process(-1); err != nil {
		return nil, err
	}
	l.endWord()
	return l.words, nil
}
