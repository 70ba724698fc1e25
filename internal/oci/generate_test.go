package oci

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

// TestProcessArgs covers docker's entrypoint/command combination
// (daemon/commit.go merge, daemon/create.go mergeAndVerifyConfig,
// daemon/container.go getEntrypointAndArgs) and the docker CLI's
// --entrypoint "" (sent as [""]).
func TestProcessArgs(t *testing.T) {
	sh := func(s string) []string { return []string{"/bin/sh", "-c", s} }
	for _, tc := range []struct {
		name             string
		imgEntry, imgCmd []string
		entry            []string
		entrySet         bool
		cmd              []string
		want             []string
		wantErr          bool
	}{
		{name: "image cmd only", imgCmd: []string{"sh"}, want: []string{"sh"}},
		{name: "image entrypoint and cmd", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, want: []string{"/entry.sh", "redis-server"}},
		{name: "image entrypoint only", imgEntry: []string{"/bin/app", "--serve"}, want: []string{"/bin/app", "--serve"}},
		{name: "user cmd replaces image cmd", imgCmd: []string{"sh"}, cmd: []string{"echo", "hi"}, want: []string{"echo", "hi"}},
		{name: "user cmd keeps image entrypoint", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, cmd: []string{"redis-cli"}, want: []string{"/entry.sh", "redis-cli"}},
		{name: "empty user cmd keeps image cmd", imgCmd: []string{"sh"}, cmd: []string{}, want: []string{"sh"}},
		{name: "user entrypoint drops image cmd", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, entry: []string{"/bin/ls"}, entrySet: true, want: []string{"/bin/ls"}},
		{name: "user entrypoint and cmd", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, entry: []string{"/bin/ls"}, entrySet: true, cmd: []string{"-l", "/"}, want: []string{"/bin/ls", "-l", "/"}},
		{name: "empty entrypoint resets, user cmd runs", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, entry: []string{""}, entrySet: true, cmd: []string{"id"}, want: []string{"id"}},
		{name: "nil entrypoint given resets", imgEntry: []string{"/entry.sh"}, entrySet: true, cmd: []string{"id"}, want: []string{"id"}},
		{name: "empty entrypoint and no cmd: docker's no command specified", imgEntry: []string{"/entry.sh"}, imgCmd: []string{"redis-server"}, entry: []string{""}, entrySet: true, wantErr: true},
		{name: "shell form image cmd", imgCmd: sh("echo $HOME"), want: sh("echo $HOME")},
		{name: "shell form image entrypoint ignores cmd args as sh does", imgEntry: sh("exec nginx"), imgCmd: []string{"-g", "daemon off;"}, want: append(sh("exec nginx"), "-g", "daemon off;")},
		{name: "nothing to run", wantErr: true},
		{name: "empty program name", cmd: []string{""}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Image.Entrypoint, cfg.Image.Cmd = tc.imgEntry, tc.imgCmd
			cfg.Entrypoint, cfg.EntrypointSet, cfg.Cmd = tc.entry, tc.entrySet, tc.cmd
			if tc.wantErr {
				genErr(t, cfg, errdefs.ErrInvalid)
				return
			}
			assert.Equal(t, tc.want, gen(t, cfg).Process.Args)
		})
	}
}

func TestEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		image    []string
		user     []string
		tty      bool
		hostname string
		want     []string
	}{
		{
			name: "no PATH anywhere: docker's default",
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "HOME=/root"},
		},
		{
			name:  "image PATH replaces the default in place",
			image: []string{"PATH=/opt/bin:/bin", "LANG=C.UTF-8"},
			want:  []string{"PATH=/opt/bin:/bin", "HOSTNAME=" + testID[:12], "LANG=C.UTF-8", "HOME=/root"},
		},
		{
			name:  "user wins over image by key, user order first",
			image: []string{"A=image", "B=image"},
			user:  []string{"B=user", "C=user"},
			want:  []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "B=user", "C=user", "A=image", "HOME=/root"},
		},
		{
			name:  "a key without value removes the image's",
			image: []string{"A=image", "B=image"},
			user:  []string{"A"},
			want:  []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "B=image", "HOME=/root"},
		},
		{
			name: "tty adds TERM=xterm",
			tty:  true,
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "TERM=xterm", "HOME=/root"},
		},
		{
			name:  "TERM and HOSTNAME overridable",
			tty:   true,
			image: []string{"TERM=vt100"},
			user:  []string{"HOSTNAME=mine"},
			want:  []string{"PATH=" + DefaultPath, "HOSTNAME=mine", "TERM=vt100", "HOME=/root"},
		},
		{
			name:     "HOSTNAME follows --hostname",
			hostname: "db",
			want:     []string{"PATH=" + DefaultPath, "HOSTNAME=db", "HOME=/root"},
		},
		{
			name: "HOME kept when set",
			user: []string{"HOME=/data"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "HOME=/data"},
		},
		{
			name: "empty HOME filled from passwd, as runc",
			user: []string{"HOME="},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "HOME=/root"},
		},
		{
			name: "values keep their = signs",
			user: []string{"URL=a=b=c"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=" + testID[:12], "URL=a=b=c", "HOME=/root"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Image.Env, cfg.Env, cfg.Tty, cfg.Hostname = tc.image, tc.user, tc.tty, tc.hostname
			assert.Equal(t, tc.want, gen(t, cfg).Process.Env)
		})
	}
	cfg := baseConfig()
	cfg.Env = []string{"=x"}
	genErr(t, cfg, errdefs.ErrInvalid)
	cfg.Env = []string{"A=\x00"}
	genErr(t, cfg, errdefs.ErrInvalid)
}

func TestUserHome(t *testing.T) {
	cfg := baseConfig()
	cfg.User = "app"
	s := gen(t, cfg)
	assert.Contains(t, s.Process.Env, "HOME=/home/app")
	assert.Equal(t, uint32(1000), s.Process.User.UID)
	assert.Equal(t, []uint32{1000, 100, 999}, s.Process.User.AdditionalGids)

	// a uid absent from passwd: home "/" as docker
	cfg.User = "4242"
	s = gen(t, cfg)
	assert.Contains(t, s.Process.Env, "HOME=/")
	assert.Equal(t, uint32(4242), s.Process.User.UID)
	assert.Equal(t, uint32(0), s.Process.User.GID)

	// the image's USER applies when the user gives none
	cfg.User = ""
	cfg.Image.User = "www-data"
	s = gen(t, cfg)
	assert.Equal(t, uint32(33), s.Process.User.UID)
	assert.Equal(t, []uint32{33, 999}, s.Process.User.AdditionalGids)

	// --group-add: names from the image's group file and numbers
	cfg.GroupAdd = []string{"users", "4000", "33"}
	s = gen(t, cfg)
	assert.Equal(t, []uint32{33, 999, 100, 4000}, s.Process.User.AdditionalGids)
	cfg.GroupAdd = []string{"nosuchgroup"}
	err := genErr(t, cfg, errdefs.ErrNotFound)
	assert.Contains(t, err.Error(), "unable to find group nosuchgroup")

	cfg.GroupAdd = nil
	cfg.User = "ghost"
	err = genErr(t, cfg, errdefs.ErrNotFound)
	assert.Equal(t, "unable to find user ghost: no matching entries in passwd file", err.Error())
}

func TestHostnameAndNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name         string
		edit         func(*Config)
		wantHostname string
		wantEnv      string // HOSTNAME=, "" for none
		wantNS       []string
	}{
		{
			name:         "defaults",
			edit:         func(*Config) {},
			wantHostname: testID[:12], wantEnv: "HOSTNAME=" + testID[:12],
			wantNS: []string{"mount", "network", "uts", "pid", "ipc"},
		},
		{
			name:         "hostname",
			edit:         func(c *Config) { c.Hostname = "db" },
			wantHostname: "db", wantEnv: "HOSTNAME=db",
			wantNS: []string{"mount", "network", "uts", "pid", "ipc"},
		},
		{
			name:         "host network: the host's name, own UTS namespace",
			edit:         func(c *Config) { c.NetNS = "host" },
			wantHostname: "buildhost", wantEnv: "HOSTNAME=buildhost",
			wantNS: []string{"mount", "uts", "pid", "ipc"},
		},
		{
			name:         "host network with a hostname (allowed by current docker)",
			edit:         func(c *Config) { c.NetNS = "host"; c.Hostname = "web" },
			wantHostname: "web", wantEnv: "HOSTNAME=web",
			wantNS: []string{"mount", "uts", "pid", "ipc"},
		},
		{
			name:         "joined network namespace",
			edit:         func(c *Config) { c.NetNS = "/run/berth/netns/abc" },
			wantHostname: testID[:12], wantEnv: "HOSTNAME=" + testID[:12],
			wantNS: []string{"mount", "network=/run/berth/netns/abc", "uts", "pid", "ipc"},
		},
		{
			name:         "host UTS: no hostname set",
			edit:         func(c *Config) { c.UTSMode = "host" },
			wantHostname: "", wantEnv: "HOSTNAME=buildhost",
			wantNS: []string{"mount", "network", "pid", "ipc"},
		},
		{
			name:         "host PID and IPC",
			edit:         func(c *Config) { c.PIDMode = "host"; c.IPCMode = "host" },
			wantHostname: testID[:12], wantEnv: "HOSTNAME=" + testID[:12],
			wantNS: []string{"mount", "network", "uts"},
		},
		{
			name: "container PID and IPC",
			edit: func(c *Config) {
				c.PIDMode = "/proc/42/ns/pid"
				c.IPCMode = "/proc/42/ns/ipc"
			},
			wantHostname: testID[:12], wantEnv: "HOSTNAME=" + testID[:12],
			wantNS: []string{"mount", "network", "uts", "pid=/proc/42/ns/pid", "ipc=/proc/42/ns/ipc"},
		},
		{
			name:         "private cgroup namespace on request",
			edit:         func(c *Config) { c.CgroupNS = "private"; c.IPCMode = "shareable" },
			wantHostname: testID[:12], wantEnv: "HOSTNAME=" + testID[:12],
			wantNS: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.edit(&cfg)
			s := gen(t, cfg)
			assert.Equal(t, tc.wantHostname, s.Hostname)
			assert.Contains(t, s.Process.Env, tc.wantEnv)
			assert.Equal(t, tc.wantNS, nsTypes(s))
		})
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		msg  string
	}{
		{"empty rootfs", func(c *Config) { c.Rootfs = "" }, "rootfs"},
		{"relative rootfs", func(c *Config) { c.Rootfs = "rootfs" }, "rootfs"},
		{"short id", func(c *Config) { c.ID = "abc" }, "64 hex"},
		{"non-hex id", func(c *Config) { c.ID = testID[:63] + "g" }, "64 hex"},
		{"relative workdir", func(c *Config) { c.WorkingDir = "app" }, "absolute path"},
		{"hostname with host UTS", func(c *Config) { c.UTSMode = "host"; c.Hostname = "x" }, "conflicting options: hostname and the UTS mode"},
		{"domainname with host UTS", func(c *Config) { c.UTSMode = "host"; c.Domainname = "x" }, "conflicting options"},
		{"long hostname", func(c *Config) { c.Hostname = string(make([]byte, 65)) }, "hostname"},
		{"bad pid mode", func(c *Config) { c.PIDMode = "container:abc" }, "invalid PID mode"},
		{"bad net mode", func(c *Config) { c.NetNS = "bridge" }, "invalid network mode"},
		{"bad cgroupns", func(c *Config) { c.CgroupNS = "shared" }, "cgroup namespace"},
		{"shared netns without path", func(c *Config) { c.NetNSShared = true }, "shared network namespace"},
		{"oom score", func(c *Config) { v := 1001; c.OomScoreAdj = &v }, "oom score adj"},
		{"stop signal", func(c *Config) { c.StopSignal = "SIGNOPE" }, "invalid signal"},
		{"image stop signal", func(c *Config) { c.Image.StopSignal = "99" }, "invalid signal"},
		{"relative init path", func(c *Config) { c.Init = true; c.InitPath = "berth" }, "init binary"},
		{"relative seccomp path", func(c *Config) { c.Seccomp = "profile.json" }, "seccomp"},
		{"missing seccomp file", func(c *Config) { c.Seccomp = "/nonexistent.json" }, "seccomp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			tc.edit(&cfg)
			err := genErr(t, cfg, errdefs.ErrInvalid)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestWorkdir(t *testing.T) {
	cfg := baseConfig()
	cfg.Image.WorkingDir = "/srv/app/"
	assert.Equal(t, "/srv/app", gen(t, cfg).Process.Cwd)
	cfg.WorkingDir = "/data/../work"
	assert.Equal(t, "/work", gen(t, cfg).Process.Cwd)
}

func TestProcessSettings(t *testing.T) {
	cfg := baseConfig()
	cfg.Tty, cfg.NoNewPrivileges, cfg.ReadOnly = true, true, true
	score := -500
	cfg.OomScoreAdj = &score
	cfg.Domainname = "example.org"
	cfg.Annotations = map[string]string{"org.opencontainers.image.title": "x"}
	cfg.CgroupsPath = "/berth/" + testID
	s := gen(t, cfg)
	assert.True(t, s.Process.Terminal)
	assert.True(t, s.Process.NoNewPrivileges)
	assert.True(t, s.Root.Readonly)
	assert.Equal(t, -500, *s.Process.OOMScoreAdj)
	assert.Equal(t, "example.org", s.Linux.Sysctl["kernel.domainname"])
	assert.Equal(t, cfg.Annotations, s.Annotations)
	assert.Equal(t, "/berth/"+testID, s.Linux.CgroupsPath)
	assert.Equal(t, cfg.Rootfs, s.Root.Path)
}

func TestInit(t *testing.T) {
	cfg := baseConfig()
	cfg.Init, cfg.InitPath = true, "/usr/local/bin/myprog"
	cfg.Cmd = []string{"sleep", "1000"}
	s := gen(t, cfg)
	assert.Equal(t, []string{InitMountPath, "--", "sleep", "1000"}, s.Process.Args)
	assert.Contains(t, s.Process.Env, ReaperEnv+"=1")
	m := mountAt(s, InitMountPath)
	require.NotNil(t, m)
	assert.Equal(t, "/usr/local/bin/myprog", m.Source)
	assert.Equal(t, []string{"bind", "ro"}, m.Options)
	// after the defaults, before the user's mounts
	assert.Equal(t, 7, indexOf(destinations(s), InitMountPath))

	// docker adds no init when the PID namespace is not the container's
	cfg.PIDMode = "host"
	s = gen(t, cfg)
	assert.Equal(t, []string{"sleep", "1000"}, s.Process.Args)
	assert.Nil(t, mountAt(s, InitMountPath))
	assert.NotContains(t, s.Process.Env, ReaperEnv+"=1")
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func TestStopSignal(t *testing.T) {
	cfg := baseConfig()
	sig, err := StopSignal(cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 15, sig)
	cfg.Image.StopSignal = "SIGQUIT"
	sig, _ = StopSignal(cfg)
	assert.EqualValues(t, 3, sig)
	cfg.StopSignal = "usr1"
	sig, _ = StopSignal(cfg)
	assert.EqualValues(t, 10, sig)
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{
		"9": 9, "KILL": 9, "SIGKILL": 9, "sigterm": 15, "SIGRTMIN": 34, "RTMIN+3": 37,
		"SIGRTMAX": 64, "RTMAX-2": 62, "winch": 28, "64": 64,
	} {
		got, err := ParseSignal(in)
		require.NoError(t, err, in)
		assert.EqualValues(t, want, got, in)
	}
	for _, in := range []string{"", "0", "65", "-1", "SIGFOO", "RTMIN+31", "RTMAX+1", "RTMIN-1"} {
		_, err := ParseSignal(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}
