package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testTime is the mtime of generated entries.
var testTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// ent is one entry of a generated tar.
type ent struct {
	h    tar.Header
	body string
}

func regEnt(name, body string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, body: body}
}

func dirEnt(name string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symEnt(name, target string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func linkEnt(name, target string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func devEnt(name string, typ byte, major, minor int64) ent {
	return ent{h: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor}}
}

// with returns e changed by f.
func (e ent) with(f func(h *tar.Header)) ent {
	f(&e.h)
	return e
}

// mkTar writes the entries as a PAX tar.
func mkTar(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		require.NoError(t, tw.WriteHeader(&h))
		if e.body != "" {
			_, err := io.WriteString(tw, e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// compress compresses b with c.
func compress(t testing.TB, b []byte, c Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Compress(&buf, c)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// rawBlock returns a 512-byte ustar header block; for hand-made streams
// that tar.Writer refuses to produce.
func rawBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// paxRecord formats one PAX record.
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		s := fmt.Sprint(n) + rec
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// pad rounds b up to whole blocks.
func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// tarList reads a tar and describes each entry in order.
func tarList(t testing.TB, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		line := fmt.Sprintf("%c %s", h.Typeflag, h.Name)
		if h.Linkname != "" {
			line += " -> " + h.Linkname
		}
		var xs []string
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, paxXattr) {
				xs = append(xs, strings.TrimPrefix(k, paxXattr)+"="+v)
			}
		}
		slices.Sort(xs)
		if len(xs) > 0 {
			line += " [" + strings.Join(xs, ",") + "]"
		}
		out = append(out, line)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func errorsNew(s string) error { return errors.New(s) }

func ioMultiReader(r ...io.Reader) io.Reader { return io.MultiReader(r...) }
