package shim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"":               {0x10, 0x11},
		"ctrl-p,ctrl-q":  {0x10, 0x11},
		"ctrl-a,x":       {0x01, 'x'},
		"ctrl-@,ctrl-[":  {0x00, 0x1b},
		"ctrl-_,ctrl-\\": {0x1f, 0x1c},
		"CTRL-Z":         {0x1a},
	} {
		got, err := ParseDetachKeys(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", "ctrl-p,", "shift-a"} {
		if _, err := ParseDetachKeys(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParseDetachKeys(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func readAllProxy(t *testing.T, in string, keys []byte, oneByte bool) (string, error) {
	t.Helper()
	var r io.Reader = strings.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	var out bytes.Buffer
	_, err := io.Copy(&out, NewEscapeProxy(r, keys))
	return out.String(), err
}

func TestEscapeProxy(t *testing.T) {
	keys := []byte{0x10, 0x11}
	for _, one := range []bool{false, true} {
		out, err := readAllProxy(t, "ls\r\x10\x11after", keys, one)
		if !errors.Is(err, ErrDetached) || out != "ls\r" {
			t.Errorf("detach: %q, %v", out, err)
		}
		// A prefix that does not complete is passed on.
		out, err = readAllProxy(t, "a\x10b\x10", keys, one)
		if err != nil || out != "a\x10b\x10" {
			t.Errorf("partial: %q, %v", out, err)
		}
	}
	// Overlapping sequences: keys "a,a,b" in "aaab".
	out, err := readAllProxy(t, "xaaab", []byte("aab"), true)
	if !errors.Is(err, ErrDetached) || out != "xa" {
		t.Errorf("overlap: %q, %v", out, err)
	}
}

func TestFramesAndHandshake(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close()
	defer cb.Close()
	self := Hello{Monitor: proc.ID{PID: 42, Start: 7}}
	done := make(chan error, 1)
	go func() {
		if _, err := ServerHello(cb, self); err != nil {
			done <- err
			return
		}
		var req Request
		if err := cb.ReadJSON(Control, &req); err != nil {
			done <- err
			return
		}
		if req.Op != OpAttach || req.ID != "x" || !req.Stdin {
			done <- errors.New("request garbled")
			return
		}
		done <- cb.WriteJSON(Control, ErrorResponse(errdefs.New(errdefs.ErrNotFound, "no such container: x")))
	}()
	h, err := ClientHello(ca)
	if err != nil || h.Monitor != self.Monitor {
		t.Fatalf("hello: %+v, %v", h, err)
	}
	if err := ca.WriteJSON(Control, Request{Op: OpAttach, ID: "x", Stdin: true}); err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := ca.ReadJSON(Control, &resp); err != nil {
		t.Fatal(err)
	}
	if err := resp.Err(); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "no such container: x" {
		t.Fatalf("response error: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if (&Response{}).Err() != nil {
		t.Fatal("empty response is an error")
	}
}

func TestVersionMismatch(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close()
	defer cb.Close()
	go func() {
		var h Hello
		_ = cb.ReadJSON(Control, &h)
		_ = cb.WriteJSON(Control, Hello{Proto: Version + 1, Monitor: proc.ID{PID: 9}})
	}()
	h, err := ClientHello(ca)
	if !errors.Is(err, ErrVersion) || h.Proto != Version+1 {
		t.Fatalf("got %+v, %v; want ErrVersion", h, err)
	}
}

func TestFrameLimits(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close()
	defer cb.Close()
	if err := ca.WriteFrame(Stdout, make([]byte, MaxFrame+1)); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("oversized frame: %v", err)
	}
	go func() {
		_ = ca.WriteData(Stdout, bytes.Repeat([]byte("x"), MaxFrame+10))
		// A header announcing too much is refused by the reader.
		_, _ = a.Write([]byte{byte(Stdout), 0xff, 0xff, 0xff, 0xff})
	}()
	total := 0
	for total < MaxFrame+10 {
		typ, p, err := cb.ReadFrame()
		if err != nil || typ != Stdout {
			t.Fatalf("frame: %q %v", typ, err)
		}
		total += len(p)
	}
	if _, _, err := cb.ReadFrame(); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("oversized header: %v", err)
	}
}

func TestListenDialLongPath(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := mkdirAll(long); err != nil {
		t.Fatal(err)
	}
	path := Socket(long)
	if len(path) <= maxSockPath {
		t.Fatalf("path %d bytes is not long", len(path))
	}
	for i := 0; i < 2; i++ { // the second Listen replaces the stale file
		ln, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte{byte(Stdout), 0, 0, 0, 1, 'k'})
				c.Close()
			}
		}()
		c, err := Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.ReadFrame()
		if err != nil || typ != Stdout || string(p) != "k" {
			t.Fatalf("read: %q %q %v", typ, p, err)
		}
		c.Close()
		ln.Close()
	}
}

func mkdirAll(p string) error { return os.MkdirAll(p, 0o700) }
