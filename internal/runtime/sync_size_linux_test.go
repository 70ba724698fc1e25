package runtime

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyncSocketLargePacket: a config over the 64 KiB first read (a large
// environment) arrives whole.
func TestSyncSocketLargePacket(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := newSyncSocket(os.NewFile(uintptr(fds[0]), "a"))
	b := newSyncSocket(os.NewFile(uintptr(fds[1]), "b"))
	defer a.f.Close()
	defer b.f.Close()
	big := strings.Repeat("x", 300<<10)
	go func() { _ = a.send(&message{Type: msgError, Error: big}) }()
	m, _, err := b.recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.Error != big {
		t.Fatalf("got %d bytes, want %d", len(m.Error), len(big))
	}
}
