package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// makeRootfs builds a small container root file system with symlinks that
// point outside it when followed on the host.
func makeRootfs(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	p := func(s string) string { return filepath.Join(r, s) }
	require.NoError(t, os.MkdirAll(p("etc"), 0o755))
	require.NoError(t, os.WriteFile(p("etc/hosts"), []byte("container hosts\n"), 0o644))
	require.NoError(t, os.Symlink("/etc", p("etclink")))  // absolute: inside the root
	require.NoError(t, os.Symlink("../../..", p("up")))   // climbs: clamped at the root
	require.NoError(t, os.Symlink("/etc/hosts", p("hl"))) // a final symlink
	require.NoError(t, unix.Mknod(p("wh"), unix.S_IFCHR, 0))
	require.NoError(t, unix.Mkfifo(p("fifo"), 0o644))
	return r
}

func tarBytes(t *testing.T, root string, opts TarOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Tar(context.Background(), &buf, root, opts))
	return buf.Bytes()
}

func TestTar(t *testing.T) {
	testutil.RequiresRoot(t)
	r := makeRootfs(t)
	tests := []struct {
		name string
		opts TarOptions
		want []string
	}{
		{"whole tree", TarOptions{}, []string{"5 etc/", "0 etc/hosts", "2 etclink -> /etc", "6 fifo", "2 hl -> /etc/hosts", "2 up -> ../../..", "3 wh"}},
		{"skip whiteouts", TarOptions{SkipWhiteouts: true}, []string{"5 etc/", "0 etc/hosts", "2 etclink -> /etc", "6 fifo", "2 hl -> /etc/hosts", "2 up -> ../../.."}},
		{"whole tree renamed", TarOptions{Source: "/", Name: "rootfs", SkipWhiteouts: true}, []string{"5 rootfs/", "5 rootfs/etc/", "0 rootfs/etc/hosts", "2 rootfs/etclink -> /etc", "6 rootfs/fifo", "2 rootfs/hl -> /etc/hosts", "2 rootfs/up -> ../../.."}},
		{"one file", TarOptions{Source: "/etc/hosts"}, []string{"0 hosts"}},
		{"one file renamed", TarOptions{Source: "/etc/hosts", Name: "h.txt"}, []string{"0 h.txt"}},
		{"a directory", TarOptions{Source: "etc"}, []string{"5 etc/", "0 etc/hosts"}},
		{"a directory renamed", TarOptions{Source: "/etc/", Name: "out"}, []string{"5 out/", "0 out/hosts"}},
		{"parent symlink resolved in the root", TarOptions{Source: "/etclink/hosts"}, []string{"0 hosts"}},
		{"climbing symlink clamped at the root", TarOptions{Source: "/up/up/etc/hosts"}, []string{"0 hosts"}},
		{"final symlink not followed", TarOptions{Source: "/hl"}, []string{"2 hl -> /etc/hosts"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tarBytes(t, r, tc.opts)
			assert.Equal(t, tc.want, tarList(t, b))
			sameTar(t, b, tarBytes(t, r, tc.opts))
		})
	}
	// The file archived through symlinks is the container's, not the
	// host's /etc/hosts.
	dir := t.TempDir()
	_, err := applyBytes(t, dir, tarBytes(t, r, TarOptions{Source: "/up/etclink/hosts"}), ApplyOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "hosts"))
	require.NoError(t, err)
	assert.Equal(t, "container hosts\n", string(b))

	var buf bytes.Buffer
	for _, src := range []string{"/nope", "/nodir/file", "/etc/hosts/x"} {
		err = Tar(context.Background(), &buf, r, TarOptions{Source: src})
		assert.ErrorIs(t, err, errdefs.ErrNotFound, src)
	}
}

func TestTarCancel(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Tar(ctx, &bytes.Buffer{}, makeRootfs(t), TarOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}
