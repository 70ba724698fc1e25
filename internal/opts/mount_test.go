package opts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestParseVolume(t *testing.T) {
	cwd, err := os.Getwd()
	require.NoError(t, err)
	for in, want := range map[string]Mount{
		"/data":                       {Type: TypeVolume, Target: "/data"},
		"/host:/ctr":                  {Type: TypeBind, Source: "/host", Target: "/ctr"},
		"/host/:/ctr/":                {Type: TypeBind, Source: "/host", Target: "/ctr"},
		"/host:/ctr:ro":               {Type: TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true},
		"/host:/ctr:rw":               {Type: TypeBind, Source: "/host", Target: "/ctr"},
		"/host:/ctr:ro,rshared":       {Type: TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true, Propagation: "rshared"},
		"/host:/ctr:z":                {Type: TypeBind, Source: "/host", Target: "/ctr", Label: "z"},
		"/host:/ctr:Z,slave,cached":   {Type: TypeBind, Source: "/host", Target: "/ctr", Label: "Z", Propagation: "slave"},
		"db:/var/lib/mysql":           {Type: TypeVolume, Source: "db", Target: "/var/lib/mysql"},
		"db:/var/lib/mysql:nocopy,ro": {Type: TypeVolume, Source: "db", Target: "/var/lib/mysql", NoCopy: true, ReadOnly: true},
		"my_vol.1-x:/x":               {Type: TypeVolume, Source: "my_vol.1-x", Target: "/x"},
		"./data:/data":                {Type: TypeBind, Source: filepath.Join(cwd, "data"), Target: "/data"},
		"../up:/up":                   {Type: TypeBind, Source: filepath.Join(filepath.Dir(cwd), "up"), Target: "/up"},
	} {
		got, err := ParseVolume(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, msg := range map[string]string{
		"":                        "invalid volume specification",
		":/ctr":                   "invalid volume specification",
		"/host:ro":                "invalid volume specification", // two fields, the second a mode
		"/a:/b:/c:/d":             "invalid volume specification",
		"/host:/ctr:ro,rw":        "invalid mode",
		"/host:/ctr:bogus":        "invalid mode",
		"/host:/ctr:shared,slave": "invalid mode",
		"/host:relative":          "must be absolute",
		"/host:/":                 "destination can't be '/'",
		"/host:/ctr/..":           "destination can't be '/'",
		"rel/path:/ctr":           "invalid characters for a local volume name",
		"~/x:/ctr":                "invalid characters for a local volume name",
		"a:/ctr":                  "invalid characters for a local volume name",
		"-bad:/ctr":               "invalid characters for a local volume name",
		"vol:/ctr:shared":         "only for bind mounts",
		"/host:/ctr:nocopy":       "volume-*",
		"relative":                "must be absolute",
	} {
		_, err := ParseVolume(in)
		require.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
		assert.Contains(t, err.Error(), msg, "%q", in)
	}
}

func TestParseMount(t *testing.T) {
	for in, want := range map[string]Mount{
		"type=bind,source=/a,target=/b":                        {Type: TypeBind, Source: "/a", Target: "/b"},
		"type=bind,src=/a,dst=/b,readonly":                     {Type: TypeBind, Source: "/a", Target: "/b", ReadOnly: true},
		"type=bind,src=/a,destination=/b,ro=false":             {Type: TypeBind, Source: "/a", Target: "/b"},
		"type=bind,src=/a,dst=/b,ro=1,bind-propagation=rslave": {Type: TypeBind, Source: "/a", Target: "/b", ReadOnly: true, Propagation: "rslave"},
		"type=bind,src=/a,dst=/b,bind-recursive=disabled":      {Type: TypeBind, Source: "/a", Target: "/b", NonRecursive: true},
		"type=bind,src=/a,dst=/b,bind-create-src":              {Type: TypeBind, Source: "/a", Target: "/b", CreateSource: true},
		"TYPE=BIND,Source=/a,Target=/b,consistency=cached":     {Type: TypeBind, Source: "/a", Target: "/b"},
		"source=db,target=/data":                               {Type: TypeVolume, Source: "db", Target: "/data"},
		"type=volume,target=/data,volume-nocopy":               {Type: TypeVolume, Target: "/data", NoCopy: true},
		"type=volume,src=db,dst=/data,volume-nocopy=true,ro":   {Type: TypeVolume, Source: "db", Target: "/data", NoCopy: true, ReadOnly: true},
		"type=tmpfs,target=/run":                               {Type: TypeTmpfs, Target: "/run"},
		"type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770":   {Type: TypeTmpfs, Target: "/run", TmpfsSize: 64 << 20, TmpfsMode: 0o1770},
		`type=bind,"source=/a,b",target=/c`:                    {Type: TypeBind, Source: "/a,b", Target: "/c"},
		`"type=bind","src=/x y","dst=/z"`:                      {Type: TypeBind, Source: "/x y", Target: "/z"},
		"  type=bind,src=/a,dst=/b  ":                          {Type: TypeBind, Source: "/a", Target: "/b"},
	} {
		got, err := ParseMount(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, msg := range map[string]string{
		"":                              "empty",
		"type=bind,target=/b":           "Source must not be empty",
		"type=bind,src=rel,dst=/b":      "absolute",
		"type=bind,src=/a":              "Target must not be empty",
		"type=bind,src=/a,dst=/":        "destination can't be '/'",
		"type=bind,src=/a,dst=b":        "must be absolute",
		"type=volume,src=a/b,dst=/b":    "invalid characters",
		"type=tmpfs,src=/a,dst=/b":      "Source must not be specified",
		"type=image,src=busybox,dst=/b": "unknown or not supported",
		"type=npipe,src=/a,dst=/b":      "unknown or not supported",
		"type=bind,src=/a,dst=/b,bind-propagation=bogus":    "bind-propagation",
		"type=volume,src=vv,dst=/b,bind-propagation=shared": "cannot mix 'bind-*'",
		"type=bind,src=/a,dst=/b,volume-nocopy":             "cannot mix 'volume-*'",
		"type=bind,src=/a,dst=/b,tmpfs-size=1m":             "cannot mix 'tmpfs-*'",
		"type=tmpfs,dst=/b,tmpfs-size=lots":                 "tmpfs-size",
		"type=tmpfs,dst=/b,tmpfs-mode=999":                  "tmpfs-mode",
		"type=bind,src=/a,dst=/b,ro=maybe":                  "invalid boolean",
		"type=bind,src=/a,dst=/b,readonly=":                 "value is empty",
		"type=bind,src= /a,dst=/b":                          "whitespace",
		" type =bind,src=/a,dst=/b":                         "whitespace",
		"type=bind,src=/a,dst=/b,bogus=1":                   "unknown option",
		"type=bind,src=/a,dst=/b,target":                    "key=value pair",
		"type=volume,src=vv,dst=/b,volume-driver=nfs":       "not supported",
		"type=bind,src=/a,dst=/b,bind-nonrecursive":         "key=value pair",
		"type=bind,src=/a,dst=/b,bind-recursive=readonly":   "bind-recursive",
		`type=bind,"src=/a,dst=/b`:                          "invalid --mount",
	} {
		_, err := ParseMount(in)
		require.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
		assert.Contains(t, err.Error(), msg, "%q", in)
	}
	cwd, _ := os.Getwd()
	m, err := ParseMount("type=bind,src=./x,dst=/x")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cwd, "x"), m.Source)
}

func TestParseTmpfs(t *testing.T) {
	m, err := ParseTmpfs("/run")
	require.NoError(t, err)
	assert.Equal(t, Mount{Type: TypeTmpfs, Target: "/run"}, m)
	m, err = ParseTmpfs("/tmp:rw,exec,size=64m,mode=1777,uid=1000")
	require.NoError(t, err)
	assert.Equal(t, Mount{Type: TypeTmpfs, Target: "/tmp", Options: []string{"rw", "exec", "size=64m", "mode=1777", "uid=1000"}}, m)
	for _, in := range []string{"", "tmp", "/", "/tmp:bogus", "/tmp:size"} {
		_, err := ParseTmpfs(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
	}
}

func TestValidateVolumeName(t *testing.T) {
	for _, ok := range []string{"db", "a1", "my-vol_1.x", "0abc"} {
		assert.NoError(t, ValidateVolumeName(ok), ok)
	}
	for _, bad := range []string{"", "a", "_db", ".db", "-db", "db/x", "d b", "db:x"} {
		assert.ErrorIs(t, ValidateVolumeName(bad), errdefs.ErrInvalid, bad)
	}
}
