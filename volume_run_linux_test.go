package berth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// The seed course's volume chapter (P29-P33) and docker's volume rules,
// through the public API, with containers running in this process.

// TestBindMountSeed: -v /host:/ctr shares files both ways, a change made
// on the host while the container is stopped is there after start, and
// inspect shows the mount (P31).
func TestBindMountSeed(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	host := filepath.Join(t.TempDir(), "host", "dir") // missing: -v creates it
	spec := berth.Spec{Image: "busybox", Name: "u1", Privileged: true,
		Mounts: volParse(t, berth.ParseVolume, host+":/tmp/ctr"),
		Cmd:    volSh("echo from-container > /tmp/ctr/c.txt; cat /tmp/ctr/h.txt 2>/dev/null; ls -ld /tmp/ctr >/dev/null")}
	c, out, errOut, code := volRun(t, rt, spec)
	if code != 0 || out != "" {
		t.Fatalf("first run: %d %q %q", code, out, errOut)
	}
	if got := volRead(t, filepath.Join(host, "c.txt")); got != "from-container\n" {
		t.Fatalf("container's file on the host: %q", got)
	}
	// The host writes while the container is stopped; start sees it.
	volWrite(t, filepath.Join(host, "h.txt"), "from-host\n")
	if out, errOut, code := volStart(t, c); code != 0 || out != "from-host\n" {
		t.Fatalf("after start: %d %q %q", code, out, errOut)
	}
	mp := volMounts(t, c)["/tmp/ctr"]
	if mp != (berth.MountPoint{Type: "bind", Source: host, Destination: "/tmp/ctr", Mode: "", RW: true, Propagation: "rprivate"}) {
		t.Fatalf("inspect mount: %+v", mp)
	}
	in, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.HostConfig.Binds) != 1 || in.HostConfig.Binds[0] != host+":/tmp/ctr" || !in.HostConfig.Privileged {
		t.Fatalf("HostConfig: %v %v", in.HostConfig.Binds, in.HostConfig.Privileged)
	}

	// A single file, as the seed's redis.conf.
	conf := filepath.Join(t.TempDir(), "redis.conf")
	volWrite(t, conf, "appendonly yes\n")
	_, out, errOut, code = volRun(t, rt, berth.Spec{Image: "busybox", Mounts: volParse(t, berth.ParseVolume, conf+":/etc/redis/redis.conf"),
		Cmd: volSh("cat /etc/redis/redis.conf")})
	if code != 0 || out != "appendonly yes\n" {
		t.Fatalf("file bind: %d %q %q", code, out, errOut)
	}
}

// TestBindMountReadOnly: :ro refuses writes inside while host changes stay
// visible (P32); :rw is the default.
func TestBindMountReadOnly(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	host := t.TempDir()
	volWrite(t, filepath.Join(host, "f"), "v1\n")
	spec := berth.Spec{Image: "busybox", Privileged: true, Mounts: volParse(t, berth.ParseVolume, host+":/data:ro"),
		Cmd: volSh("cat /data/f; echo x > /data/new")}
	c, out, errOut, code := volRun(t, rt, spec)
	if code == 0 || out != "v1\n" || !strings.Contains(errOut, "Read-only file system") {
		t.Fatalf("write to :ro: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); !os.IsNotExist(err) {
		t.Fatalf("a write through :ro reached the host: %v", err)
	}
	volWrite(t, filepath.Join(host, "f"), "v2\n")
	if out, _, _ := volStart(t, c); out != "v2\n" {
		t.Fatalf("host change not visible through :ro: %q", out)
	}
	if mp := volMounts(t, c)["/data"]; mp.RW || mp.Mode != "ro" {
		t.Fatalf("inspect: %+v", mp)
	}
	_, _, errOut, code = volRun(t, rt, berth.Spec{Image: "busybox", Mounts: volParse(t, berth.ParseVolume, host+":/data:rw"),
		Cmd: volSh("echo y > /data/new")})
	if code != 0 || volRead(t, filepath.Join(host, "new")) != "y\n" {
		t.Fatalf(":rw: %d %q", code, errOut)
	}
}

// TestVolumesFrom: --volumes-from takes another container's binds and
// volumes with their modes (P33), read-only when asked, and they stay
// after that container is removed.
func TestVolumesFrom(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	host := t.TempDir()
	parent, err := rt.Create(ctx, berth.Spec{Image: "busybox", Name: "u1", Network: "none", Privileged: true,
		Mounts: volParse(t, berth.ParseVolume, host+":/tmp", "named:/named", "/anon", host+":/ro:ro"),
		Cmd:    volSh("echo p > /tmp/p.txt; echo p > /named/p.txt; echo p > /anon/p.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := volStart(t, parent); code != 0 {
		t.Fatalf("parent: %d %q", code, errOut)
	}
	anonName := volMounts(t, parent)["/anon"].Name
	child, err := rt.Create(ctx, berth.Spec{Image: "busybox", Name: "u2", Network: "none", Privileged: true, VolumesFrom: []string{"u1"},
		Cmd: volSh("cat /tmp/p.txt /named/p.txt /anon/p.txt; echo c >> /tmp/p.txt; echo c >> /named/p.txt; echo c >> /anon/p.txt; echo x > /ro/x")})
	if err != nil {
		t.Fatal(err)
	}
	volCleanup(t, child)
	if out, errOut, code := volStart(t, child); code == 0 || out != "p\np\np\n" || !strings.Contains(errOut, "Read-only file system") {
		t.Fatalf("child: %d %q %q", code, out, errOut)
	}
	mps := volMounts(t, child)
	if len(mps) != 4 || mps["/anon"].Name != anonName || mps["/named"].Name != "named" || mps["/ro"].RW || !mps["/tmp"].RW {
		t.Fatalf("child's mounts: %+v", mps)
	}
	// The parent goes (without -v); the child keeps everything.
	if err := parent.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := volStart(t, child); code == 0 || out != "p\nc\np\nc\np\nc\n" {
		t.Fatalf("child after the parent's removal: %d %q %q", code, out, errOut)
	}
	// :ro makes everything read-only.
	ro, out, errOut, code := volRun(t, rt, berth.Spec{Image: "busybox", VolumesFrom: []string{"u2:ro"},
		Cmd: volSh("cat /named/p.txt; echo z > /named/z")})
	if code == 0 || out != "p\nc\nc\n" || !strings.Contains(errOut, "Read-only file system") {
		t.Fatalf("--volumes-from u2:ro: %d %q %q", code, out, errOut)
	}
	if err := ro.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	// rm -v of the child removes the anonymous volume it shared, once no
	// one uses it, and never the named one.
	if err := child.Remove(ctx, berth.RemoveVolumes()); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Volume(ctx, anonName); !errors.Is(err, berth.ErrNotFound) {
		t.Fatalf("anonymous volume after rm -v: %v", err)
	}
	if _, err := rt.Volume(ctx, "named"); err != nil {
		t.Fatalf("named volume after rm -v: %v", err)
	}
}

// TestNamedVolumePersists: a named volume's data outlives its containers;
// removing a volume in use is refused; the image's content is copied
// into a new volume, once, with its ownership.
func TestNamedVolumePersists(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	volImage(t, rt, "seeded", []volEntry{
		{name: "var/lib/db/", dir: true, mode: 0o750, uid: 999, gid: 998},
		{name: "var/lib/db/seed.txt", body: "seed\n", mode: 0o640, uid: 999, gid: 998},
		{name: "var/lib/db/link", link: "seed.txt", mode: 0o777},
	})
	c1, out, errOut, code := volRun(t, rt, berth.Spec{Image: "seeded", Mounts: volParse(t, berth.ParseVolume, "dbdata:/var/lib/db"),
		Cmd: volSh("cat /var/lib/db/link; echo row1 > /var/lib/db/table")})
	if code != 0 || out != "seed\n" {
		t.Fatalf("first container: %d %q %q", code, out, errOut)
	}
	v, err := rt.Volume(ctx, "dbdata")
	if err != nil {
		t.Fatal(err)
	}
	data := v.Mountpoint()
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(data, "seed.txt"), &st); err != nil || st.Uid != 999 || st.Gid != 998 || st.Mode&0o7777 != 0o640 {
		t.Fatalf("copied file: %+v %v", st, err)
	}
	if err := syscall.Lstat(data, &st); err != nil || st.Uid != 999 || st.Gid != 998 || st.Mode&0o7777 != 0o750 {
		t.Fatalf("volume root: %+v %v", st, err)
	}
	if l, err := os.Readlink(filepath.Join(data, "link")); err != nil || l != "seed.txt" {
		t.Fatalf("symlink: %q %v", l, err)
	}
	mp := volMounts(t, c1)["/var/lib/db"]
	if mp != (berth.MountPoint{Type: "volume", Name: "dbdata", Source: data, Destination: "/var/lib/db", Driver: "local", Mode: "z", RW: true}) {
		t.Fatalf("inspect: %+v", mp)
	}
	// In use by a stopped container: refused, naming it.
	err = v.Remove(ctx)
	if !errors.Is(err, berth.ErrConflict) || err.Error() != "remove dbdata: volume is in use - ["+c1.ID()+"]" {
		t.Fatalf("rm in use: %v", err)
	}
	if err := v.Remove(ctx, berth.RemoveForce()); !errors.Is(err, berth.ErrConflict) {
		t.Fatalf("rm -f in use: %v", err)
	}
	if err := c1.Remove(ctx, berth.RemoveVolumes()); err != nil {
		t.Fatal(err)
	}
	// The data outlives the container; the image is not copied again,
	// even into a volume emptied of its seed.
	if err := os.Remove(filepath.Join(data, "seed.txt")); err != nil {
		t.Fatal(err)
	}
	_, out, errOut, code = volRun(t, rt, berth.Spec{Image: "seeded", Mounts: volParse(t, berth.ParseVolume, "dbdata:/var/lib/db"),
		Cmd: volSh("cat /var/lib/db/table; ls /var/lib/db")})
	if code != 0 || out != "row1\nlink\ntable\n" {
		t.Fatalf("second container: %d %q %q", code, out, errOut)
	}
	// nocopy leaves a new volume empty.
	_, out, _, code = volRun(t, rt, berth.Spec{Image: "seeded", Mounts: volParse(t, berth.ParseMount, "type=volume,src=empty,dst=/var/lib/db,volume-nocopy"),
		Cmd: volSh("ls -A /var/lib/db")})
	if code != 0 || out != "" {
		t.Fatalf("nocopy: %d %q", code, out)
	}
}

// TestAnonymousVolumes: -v /path and the image's VOLUMEs make anonymous
// volumes at create, shown by inspect, filled from the image, kept by rm
// and removed by rm -v and --rm.
func TestAnonymousVolumes(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	volImage(t, rt, "withvol", []volEntry{
		{name: "data/", dir: true, mode: 0o755},
		{name: "data/seed.txt", body: "seed\n", mode: 0o644},
	}, "VOLUME /data")
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	c, err := rt.Create(ctx, berth.Spec{Image: "withvol", Network: "none", Mounts: volParse(t, berth.ParseVolume, "/scratch"),
		Cmd: volSh("cat /data/seed.txt; echo s > /scratch/s")})
	if err != nil {
		t.Fatal(err)
	}
	volCleanup(t, c)
	mps := volMounts(t, c)
	var names []string
	for _, dst := range []string{"/data", "/scratch"} {
		mp := mps[dst]
		if mp.Type != "volume" || !hex64.MatchString(mp.Name) || mp.Source != filepath.Join(rt.Root(), "volumes", mp.Name, "_data") || !mp.RW || mp.Driver != "local" {
			t.Fatalf("%s: %+v", dst, mp)
		}
		v, err := rt.Volume(ctx, mp.Name) // created with the container
		if err != nil || !v.Anonymous() {
			t.Fatalf("volume of %s: %v %v", dst, v, err)
		}
		names = append(names, mp.Name)
	}
	in, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := in.Config.Volumes["/data"]; !ok || len(in.Config.Volumes) != 2 {
		t.Fatalf("Config.Volumes: %v", in.Config.Volumes)
	}
	if out, errOut, code := volStart(t, c); code != 0 || out != "seed\n" {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	// Without -v the volumes stay; with -v they go.
	c2, _, _, _ := volRun(t, rt, berth.Spec{Image: "withvol", Cmd: []string{"true"}})
	kept := volMounts(t, c2)["/data"].Name
	if err := c2.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Volume(ctx, kept); err != nil {
		t.Fatalf("rm without -v removed the volume: %v", err)
	}
	if err := c.Remove(ctx, berth.RemoveVolumes()); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := rt.Volume(ctx, n); !errors.Is(err, berth.ErrNotFound) {
			t.Fatalf("rm -v left %s: %v", n, err)
		}
	}
	// --rm removes its anonymous volumes when the container exits.
	before := volumeNames(t, rt)
	_, out, _, code := volRun(t, rt, berth.Spec{Image: "withvol", AutoRemove: true, Cmd: volSh("cat /data/seed.txt")})
	if code != 0 || out != "seed\n" {
		t.Fatalf("--rm: %d %q", code, out)
	}
	if after := volumeNames(t, rt); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("--rm left volumes: %v -> %v", before, after)
	}
	// Prune (anonymous only) takes the one kept above.
	names, _, err = rt.PruneVolumes(ctx)
	if err != nil || strings.Join(names, ",") != kept {
		t.Fatalf("prune: %v %v", names, err)
	}
	assertConsistent(t, rt)
}

// TestMountTargetSymlinkStaysInRoot: an image whose mount target is a
// symlink leading out of its root file system (absolute, or with "..")
// gets the mount inside its root; the host path it names is untouched,
// and a new volume is not filled from it.
func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	outside := "/tmp/hostdir-outside-" + hex.EncodeToString(b)
	probe := "/tmp/berth-probe-" + hex.EncodeToString(b)
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outside) })
	volWrite(t, filepath.Join(outside, "secret"), "host secret\n")
	volImage(t, rt, "evil", []volEntry{
		{name: "data", link: "/../../../.." + outside, mode: 0o777},
		{name: "up", link: "../../../../../../../tmp", mode: 0o777},
		{name: "etcdata", link: "/etc", mode: 0o777},
	})
	hostEtc, err := os.ReadDir("/etc")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	volWrite(t, filepath.Join(src, "mine"), "mine\n")
	_, out, errOut, code := volRun(t, rt, berth.Spec{Image: "evil",
		Mounts: append(volParse(t, berth.ParseVolume, src+":/data", src+":/etcdata/sub"), volParse(t, berth.ParseTmpfs, "/up/"+filepath.Base(probe))...),
		Cmd:    volSh("cat /data/mine; ls /etc/sub; echo w > /data/written; echo e > /etc/sub/e")})
	if code != 0 || out != "mine\nmine\n" {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	if got := volRead(t, filepath.Join(src, "written")); got != "w\n" {
		t.Fatalf("the bind did not get the write: %q", got)
	}
	ents, err := os.ReadDir(outside)
	if err != nil || len(ents) != 1 || ents[0].Name() != "secret" || volRead(t, filepath.Join(outside, "secret")) != "host secret\n" {
		t.Fatalf("the host directory changed: %v %v", ents, err)
	}
	if _, err := os.Stat(probe); !os.IsNotExist(err) {
		t.Fatalf("host %s: %v", probe, err)
	}
	if _, err := os.Stat("/etc/sub"); !os.IsNotExist(err) {
		t.Fatalf("host /etc/sub: %v", err)
	}
	if after, _ := os.ReadDir("/etc"); len(after) != len(hostEtc) {
		t.Fatalf("host /etc changed: %d -> %d entries", len(hostEtc), len(after))
	}
	// A volume at the symlink is not filled from the host directory.
	_, out, errOut, code = volRun(t, rt, berth.Spec{Image: "evil", Mounts: volParse(t, berth.ParseVolume, "vol:/data"),
		Cmd: volSh("ls -A /data")})
	if code != 0 || out != "" {
		t.Fatalf("volume at the symlink: %d %q %q", code, out, errOut)
	}
	v, err := rt.Volume(ctx, "vol")
	if err != nil {
		t.Fatal(err)
	}
	if empty, _ := os.ReadDir(v.Mountpoint()); len(empty) != 0 {
		t.Fatalf("volume filled from outside the root: %v", empty)
	}
}

// TestTmpfsMounts: --tmpfs and --mount type=tmpfs are tmpfs mounts of the
// size asked.
func TestTmpfsMounts(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	mounts := append(volParse(t, berth.ParseTmpfs, "/run:size=1m"), volParse(t, berth.ParseMount, "type=tmpfs,dst=/scratch,tmpfs-size=2m,tmpfs-mode=1770")...)
	c, out, errOut, code := volRun(t, rt, berth.Spec{Image: "busybox", Mounts: mounts,
		Cmd: volSh("grep -E ' /(run|scratch) ' /proc/self/mountinfo; stat -c %a /scratch; echo x > /run/x && cat /run/x")})
	if code != 0 {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("output: %q", out)
	}
	want := map[string]string{"/run": "size=1024k", "/scratch": "size=2048k"}
	for _, l := range lines[:2] {
		f := strings.Fields(l)
		dst, fstype, super := f[4], f[len(f)-3], f[len(f)-1]
		if fstype != "tmpfs" || !strings.Contains(super, want[dst]) {
			t.Errorf("%s: %s", dst, l)
		}
	}
	if lines[2] != "1770" || lines[3] != "x" {
		t.Fatalf("output: %q", out)
	}
	in, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.HostConfig.Tmpfs["/run"] != "size=1m" {
		t.Fatalf("HostConfig.Tmpfs: %v", in.HostConfig.Tmpfs)
	}
	if mp := volMounts(t, c)["/scratch"]; mp.Type != "tmpfs" || !mp.RW {
		t.Fatalf("Mounts: %+v", mp)
	}
}

// TestMountBadInput: bad mounts are refused at create with a clear error,
// and nothing is created.
func TestMountBadInput(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	if _, err := rt.CreateVolume(ctx, "existing"); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	before := volStoreEntries(t, rt)
	for _, c := range []struct {
		name   string
		spec   berth.Spec
		errors string
	}{
		{"invalid volume name", berth.Spec{Mounts: []berth.Mount{{Type: "volume", Source: "a", Target: "/x"}}}, "invalid characters for a local volume name"},
		{"relative bind source", berth.Spec{Mounts: []berth.Mount{{Type: "bind", Source: "rel/dir", Target: "/x"}}}, "bind source path must be absolute"},
		{"root target", berth.Spec{Mounts: []berth.Mount{{Type: "bind", Source: host, Target: "/"}}}, "absolute path other than /"},
		{"relative target", berth.Spec{Mounts: []berth.Mount{{Type: "volume", Target: "x"}}}, "absolute path other than /"},
		{"duplicate", berth.Spec{Mounts: []berth.Mount{{Type: "volume", Source: "new1", Target: "/data"}, {Type: "bind", Source: host, Target: "/data/"}}}, "Duplicate mount point: /data"},
		{"missing --mount source", berth.Spec{Mounts: volParse(t, berth.ParseMount, "type=bind,src="+host+"/missing,dst=/x")}, "invalid mount config for type \"bind\": bind source path does not exist: " + host + "/missing"},
		{"bad tmpfs option", berth.Spec{Mounts: []berth.Mount{{Type: "tmpfs", Target: "/t", Options: []string{"bogus"}}}}, "invalid tmpfs option"},
		{"volume propagation", berth.Spec{Mounts: []berth.Mount{{Type: "volume", Source: "new2", Target: "/t", Propagation: "shared"}}}, "propagation is only for bind mounts"},
		{"unknown type", berth.Spec{Mounts: []berth.Mount{{Type: "nfs", Target: "/t"}}}, "unknown mount type"},
		{"volumes-from missing", berth.Spec{Mounts: volParse(t, berth.ParseVolume, "/anon", "new3:/n"), VolumesFrom: []string{"nosuch"}}, "no such container: nosuch"},
		{"volumes-from mode", berth.Spec{VolumesFrom: []string{"x:rshared"}}, "invalid mode: rshared"},
		{"volumes-from empty", berth.Spec{VolumesFrom: []string{""}}, "volumes-from specification cannot be an empty string"},
	} {
		c.spec.Image, c.spec.Network = "busybox", "none"
		_, err := rt.Create(ctx, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.errors) {
			t.Errorf("%s: %v, want %q", c.name, err, c.errors)
		}
		if c.name != "volumes-from missing" && !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", c.name, err)
		}
	}
	if after := volStoreEntries(t, rt); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("refused creates changed the store: %v -> %v", before, after)
	}
	for _, v := range []string{"a:/x", "rel/dir:/x", "/h:/", "/h:/x:bogus"} {
		if _, err := berth.ParseVolume(v); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("ParseVolume(%q): %v", v, err)
		}
	}
}

// TestVolumeDiskUsage: system df's Local Volumes row.
func TestVolumeDiskUsage(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	_, _, _, code := volRun(t, rt, berth.Spec{Image: "busybox", Mounts: volParse(t, berth.ParseVolume, "used:/u"), Cmd: volSh("printf 12345 > /u/f")})
	if code != 0 {
		t.Fatal("run failed")
	}
	free, err := rt.CreateVolume(ctx, "free")
	if err != nil {
		t.Fatal(err)
	}
	volWrite(t, filepath.Join(free.Mountpoint(), "g"), "123")
	du, err := rt.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if du.Volumes != (berth.UsageSummary{Total: 2, Active: 1, Size: 8, Reclaimable: 3}) {
		t.Fatalf("volumes: %+v", du.Volumes)
	}
}

// TestVolumeDeviceOptions: the local driver's type/device/o options make
// the volume a mount (here a tmpfs of 1 MiB), as docker's -o does.
func TestVolumeDeviceOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	v, err := rt.CreateVolume(ctx, "tmp", berth.WithVolumeOptions(map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}))
	if err != nil {
		t.Fatal(err)
	}
	_, out, errOut, code := volRun(t, rt, berth.Spec{Image: "busybox", Mounts: volParse(t, berth.ParseVolume, "tmp:/t"),
		Cmd: volSh("grep ' /t ' /proc/self/mountinfo; stat -c %u /t")})
	if code != 0 || !strings.Contains(out, " - tmpfs tmpfs ") || !strings.Contains(out, "size=1024k") || !strings.HasSuffix(out, "\n1000\n") {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	// The container is gone: the volume (and its mount) can go.
	for _, c := range volContainers(t, rt) {
		if err := c.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint()); !os.IsNotExist(err) {
		t.Fatalf("after rm: %v", err)
	}
}

func volContainers(t *testing.T, rt *berth.Runtime) []*berth.Container {
	t.Helper()
	cs, err := rt.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestVolumeRemoveRacesCreate: `volume rm` and creates of containers that
// use the volume, at once: every container ends up with its volume, and
// rm fails only with ErrConflict (in use) or ErrNotFound (gone).
func TestVolumeRemoveRacesCreate(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	mounts := volParse(t, berth.ParseVolume, "shared:/data")
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c, err := rt.Create(ctx, berth.Spec{Image: "busybox", Network: "none", Mounts: mounts})
			if err != nil {
				errs <- err
				return
			}
			volCleanup(t, c)
		}()
		go func() {
			defer wg.Done()
			v, err := rt.Volume(ctx, "shared")
			if err == nil {
				err = v.Remove(ctx)
			}
			if err != nil && !errors.Is(err, berth.ErrConflict) && !errors.Is(err, berth.ErrNotFound) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cs := volContainers(t, rt)
	if len(cs) != 16 {
		t.Fatalf("%d containers", len(cs))
	}
	for _, c := range cs {
		if _, err := rt.Volume(ctx, volMounts(t, c)["/data"].Name); err != nil {
			t.Fatalf("container %s lost its volume: %v", c.Name(), err)
		}
	}
}
