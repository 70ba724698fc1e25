package ipam

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestStaleTempFileRemoved: the temp file of a writer killed before its
// rename is removed by the next operation on the pool.
func TestStaleTempFileRemoved(t *testing.T) {
	dir := t.TempDir()
	p, err := Open(dir, netip.MustParsePrefix("10.99.0.0/24"), netip.MustParseAddr("10.99.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".leases-12345")
	if err := os.WriteFile(stale, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Leases(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file: %v", err)
	}
}
