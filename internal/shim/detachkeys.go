package shim

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// DefaultDetachKeys is docker's detach sequence.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ErrDetached is returned by a reader made by NewEscapeProxy once it has
// read the detach sequence. Its text is docker's.
var ErrDetached = errors.New("read escape sequence")

// ParseDetachKeys turns docker's detach-keys syntax into bytes: a comma
// separated list of single characters and ctrl-X, where X is a letter or
// one of @ [ \ ] ^ _ ("ctrl-p,ctrl-q", "ctrl-a,x"). "" is the default.
func ParseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		keys = DefaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_': // [ \ ] ^ _
				out = append(out, c-'['+27)
			default:
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid detach keys (%s): unknown character %q", keys, k))
			}
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid detach keys (%s): unknown character %q", keys, k))
		}
	}
	return out, nil
}

// escapeProxy passes r's bytes through until the key sequence appears;
// the sequence itself is never passed on, and a prefix of it is held back
// until the next byte tells whether it completes.
type escapeProxy struct {
	r       io.Reader
	keys    []byte
	matched int    // how many bytes of keys the input ends with
	out     []byte // bytes ready for the caller
	buf     []byte
	err     error // after out is drained
}

// NewEscapeProxy returns a reader of r's bytes that ends with ErrDetached
// when r yields keys (in one read or across several).
func NewEscapeProxy(r io.Reader, keys []byte) io.Reader {
	return &escapeProxy{r: r, keys: keys, buf: make([]byte, 4096)}
}

func (p *escapeProxy) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		n, err := p.r.Read(p.buf)
		for _, c := range p.buf[:n] {
			p.feed(c)
			if p.matched == len(p.keys) && len(p.keys) > 0 {
				p.err = ErrDetached
				break
			}
		}
		if err != nil && p.err == nil {
			// The input ended inside a partial sequence: pass it on.
			p.out = append(p.out, p.keys[:p.matched]...)
			p.matched = 0
			p.err = err
		}
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

func (p *escapeProxy) feed(c byte) {
	if len(p.keys) == 0 {
		p.out = append(p.out, c)
		return
	}
	for {
		if c == p.keys[p.matched] {
			p.matched++
			return
		}
		if p.matched == 0 {
			p.out = append(p.out, c)
			return
		}
		// A held-back prefix that did not complete: its first byte goes
		// out, and the rest is matched again (keys like "a,a,b").
		p.out = append(p.out, p.keys[0])
		rest := append([]byte(nil), p.keys[1:p.matched]...)
		p.matched = 0
		for _, r := range rest {
			p.feed(r)
		}
	}
}
